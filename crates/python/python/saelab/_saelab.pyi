"""Type stubs of saelab's native module (crates/python/src). Use it through ``saelab``."""

from os import PathLike
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

_Path = Union[str, PathLike]
_Floats = Any  # a float32 NumPy array or a CPU PyTorch tensor (read through DLPack)

__version__: str

class SaelabError(Exception):
    """An error from saelab's library; the message names the file, field or argument."""

class ContextualSae:
    """A dictionary run over whole windows in order: carry, temporal, or any per-position one."""

    @staticmethod
    def load(path: _Path) -> ContextualSae:
        """Loads a carry or temporal folder (``saelab train-contextual``), or any ``Sae`` folder."""
    def save(self, path: _Path) -> None:
        """Writes the dictionary's folder (a temporal SAE in SAELens's layout)."""
    def run(self, x: _Floats) -> Dict[str, Any]:
        """Windows ``[windows, len, d_in]`` (or one ``[len, d_in]``) run in order: ``codes`` (on),
        ``paid`` (onsets / novel codes), ``reconstruction``, ``context_share``, ``l0``,
        ``codes_on``."""
    @property
    def d_in(self) -> int: ...
    @property
    def d_sae(self) -> int: ...
    @property
    def architecture(self) -> str:
        """``carry``, ``temporal`` or a per-position dictionary's SAELens name."""
    @property
    def decay(self) -> Optional[npt.NDArray[np.float32]]:
        """A carry dictionary's λ per latent (None for others)."""
    @property
    def W_dec(self) -> npt.NDArray[np.float32]: ...
    @property
    def metadata(self) -> Dict[str, Any]: ...

class Sae:
    """A sparse dictionary: ``encode`` activations into features, ``decode`` them back."""

    @staticmethod
    def load(path: _Path) -> Sae:
        """Loads a SAELens, sparsify or dictionary_learning folder (told by its files)."""
    def save(self, path: _Path, format: str = "saelens") -> None:
        """Writes a folder SAELens (``"saelens"``) or sparsify (``"sparsify"``) loads."""
    def encode(self, x: _Floats) -> Any:
        """Dense features ``[n, d_sae]`` of float32 activations ``[n, d_in]`` (or one vector)."""
    def encode_sparse(
        self, x: _Floats
    ) -> Tuple[npt.NDArray[np.int64], npt.NDArray[np.uint32], npt.NDArray[np.float32]]:
        """Features as compressed rows ``(indptr, indices, values)``."""
    def decode(self, f: _Floats) -> Any:
        """Reconstructions ``[n, d_in]`` of dense features ``[n, d_sae]``."""
    def forward(self, x: _Floats) -> Any:
        """``decode(encode(x))`` without the dense features in between."""
    @property
    def d_in(self) -> int: ...
    @property
    def d_sae(self) -> int: ...
    @property
    def architecture(self) -> str:
        """``standard``, ``topk``, ``jumprelu`` or ``gated``."""
    @property
    def k(self) -> Optional[int]: ...
    @property
    def hook_name(self) -> Optional[str]: ...
    @property
    def hook_name_out(self) -> Optional[str]: ...
    @property
    def metadata(self) -> Dict[str, Any]: ...
    @property
    def W_enc(self) -> npt.NDArray[np.float32]:
        """``[d_in, d_sae]``, as saved (input normalisation folded in)."""
    @property
    def W_dec(self) -> npt.NDArray[np.float32]:
        """``[d_sae, d_in]``, as saved."""
    @property
    def b_enc(self) -> npt.NDArray[np.float32]: ...
    @property
    def b_dec(self) -> npt.NDArray[np.float32]: ...
    @property
    def threshold(self) -> Optional[npt.NDArray[np.float32]]:
        """JumpReLU's thresholds, else None."""

class Model:
    """A language model and its tokenizer: the default model, a GGUF, an HF folder or hub id."""

    def __init__(self, model: Optional[str] = None) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def n_layers(self) -> int: ...
    @property
    def d_model(self) -> int: ...
    @property
    def vocab_size(self) -> int: ...
    @property
    def context_length(self) -> int: ...
    def hooks(self) -> List[Tuple[str, int]]:
        """Every hook point in forward order, with its width."""
    def tokenize(self, text: str) -> List[int]: ...
    def decode(self, ids: Sequence[int]) -> str: ...
    def tokens(self, ids: Sequence[int]) -> List[Optional[str]]: ...
    def generate(self, prompt: str, max_tokens: int = 20) -> str:
        """The greedy continuation of ``prompt`` (new text only)."""
    def run(
        self,
        tokens: Union[str, Sequence[int], Sequence[Sequence[int]]],
        hooks: Optional[Sequence[str]] = None,
        logits: bool = True,
        edits: Optional[Mapping[str, Union[Callable[[npt.NDArray[np.float32]], Any], Sae]]] = None,
    ) -> Dict[str, npt.NDArray[Any]]:
        """One forward: the hooks read (``[batch, seq, d]``), ``logits`` and ``mask``."""

class Corpus:
    """A corpus: a file or folder (text, JSONL, Parquet) or the default corpus by name."""

    def __init__(
        self,
        name: str = "default",
        format: Optional[str] = None,
        field: Optional[str] = None,
        delimiter: Optional[str] = None,
    ) -> None: ...
    @property
    def name(self) -> str: ...
    @property
    def warnings(self) -> List[str]: ...
    def documents(self) -> Iterator[Dict[str, Any]]:
        """Documents as dicts of ``text`` and metadata fields."""
    def windows(
        self,
        model: Model,
        ctx: int = 128,
        packing: str = "packed",
        batch: int = 32,
        limit: Optional[int] = None,
    ) -> Iterator[Dict[str, npt.NDArray[Any]]]:
        """Token windows ``batch`` at a time: ``ids``, ``mask``, ``special``."""

class Cache:
    """An activation cache (``harvest`` or ``saelab harvest``)."""

    def __init__(self, path: _Path) -> None: ...
    @property
    def path(self) -> "PathLike[str]": ...
    @property
    def hooks(self) -> List[Tuple[str, int]]: ...
    @property
    def windows_count(self) -> int: ...
    @property
    def tokens(self) -> int: ...
    @property
    def ctx(self) -> int: ...
    @property
    def manifest(self) -> Dict[str, Any]: ...
    def windows(
        self, batch: int = 32, start: int = 0, end: Optional[int] = None, verify: bool = True
    ) -> Iterator[Dict[str, npt.NDArray[Any]]]:
        """Cached windows in order: ``ids``, ``mask``, ``special``, ``index`` and each hook."""

def harvest(
    model: Model,
    corpus: Corpus,
    hooks: Sequence[str],
    out: _Path,
    tokens: Optional[int] = None,
    ctx: int = 128,
    packing: str = "packed",
    dtype: str = "f16",
    batch: int = 32,
    shard_tokens: int = 32768,
    shuffle: Optional[int] = None,
    progress: Optional[Callable[[int], None]] = None,
) -> Cache: ...
def train(
    out: _Path,
    sae: Optional[List[Union[str, Dict[str, Any]]]] = None,
    run: Optional[Dict[str, Any]] = None,
    resume: bool = False,
    progress: Optional[Callable[[str, int, int], None]] = None,
    callback: Optional[Callable[[int, List[Dict[str, Any]]], None]] = None,
) -> Tuple[Dict[str, Sae], Dict[str, Any]]: ...
def evaluate(
    model: Model,
    saes: Dict[str, Sae],
    corpus: Corpus,
    tokens: int,
    ctx: int = 128,
    packing: str = "packed",
    batch: int = 8,
    dead_window: int = 1000000,
    include_special: bool = False,
    seed: int = 0,
    hook: Optional[str] = None,
    json_path: Optional[_Path] = None,
    report: Optional[_Path] = None,
    progress: Optional[Callable[[int, int, int], None]] = None,
    prune_densest: Sequence[int] = (),
) -> Dict[str, Any]: ...
