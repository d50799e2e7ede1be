from bbedit.whitebox.memit.method import MEMIT, MEMITConfig

__all__ = ["MEMIT", "MEMITConfig"]
