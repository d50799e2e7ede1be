"""The edit memory: edits embedded for search (FAISS) and stored durably (SQLite)."""

from bbedit.memory.embedder import Embedder, SentenceTransformerEmbedder, load_embedder
from bbedit.memory.memory import EditMemory, Retrieval

__all__ = ["EditMemory", "Embedder", "Retrieval", "SentenceTransformerEmbedder", "load_embedder"]
