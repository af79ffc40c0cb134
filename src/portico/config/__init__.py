"""Configuration: TOML → validated schema → compiled runtime objects."""
