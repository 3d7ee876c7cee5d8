"""Day two: changing a lab that runs (servers taken out, a lab reset)."""
