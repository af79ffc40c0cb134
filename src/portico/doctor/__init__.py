"""``portico doctor``: what a hosted app sees of a request, beside what it should see."""
