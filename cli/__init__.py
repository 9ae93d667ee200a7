"""The command line's commands, by the part of DealScout they drive; launch.py assembles them."""
