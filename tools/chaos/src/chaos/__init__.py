"""The chaos suite: one order printed on a simulated fleet while the farm is knocked about, on a seed."""
