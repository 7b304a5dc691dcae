"""Units (đơn vị): the tree, its history across merges and renames, and its CSV files."""
