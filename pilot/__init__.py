"""The pilot: runs on a CPU/GPU slot, claims tasks that fit and runs them."""
