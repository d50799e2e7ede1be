from bbedit.whitebox.rome.method import ROME, ROMEConfig

__all__ = ["ROME", "ROMEConfig"]
