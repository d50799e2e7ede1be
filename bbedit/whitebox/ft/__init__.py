from bbedit.whitebox.ft.method import FT, FTConfig

__all__ = ["FT", "FTConfig"]
