"""The indicator catalogue (chỉ tiêu) and the figures store built from it."""
