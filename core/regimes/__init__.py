"""Regimes (chế độ báo cáo) and what they are made of: periods, deadlines, working days, forms and their formulas."""
