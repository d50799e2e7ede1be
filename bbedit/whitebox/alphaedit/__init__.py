from bbedit.whitebox.alphaedit.method import AlphaEdit, AlphaEditConfig

__all__ = ["AlphaEdit", "AlphaEditConfig"]
