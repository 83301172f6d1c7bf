"""Protocol drivers behind one interface (``base.Driver``); they never touch models."""
