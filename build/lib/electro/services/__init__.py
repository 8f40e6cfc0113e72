"""Business rules: plain async functions taking an AsyncSession; no Quart imports."""
