"""Starting and stopping the apps portico hosts."""
