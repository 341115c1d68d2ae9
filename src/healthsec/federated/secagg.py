"""Secure aggregation by pairwise masking: the coordinator learns only the sum of the members' updates.

Protocol (Bonawitz et al. 2017, the pairwise-mask core of SecAgg/SecAgg+), per round:

1. keys: every sampled member makes a fresh X25519 key pair and sends the public key;
2. fit: the coordinator hands every member the list of public keys and its index; member i quantizes
   its weighted update to integers, adds for each peer j the mask PRG(HKDF(X25519(sk_i, pk_j))) with
   sign + if i < j and - otherwise, and sends the sum modulo 2^64. The masks cancel in the sum;
3. recovery: if members drop after step 1, each survivor sends the (signed) sum of its masks with the
   dropped members only, and the coordinator removes them. A survivor never reveals a mask with
   another survivor, so the survivors' individual updates stay hidden.

Why not Flower's own SecAgg+: in flwr 1.42 it exists only as a ``SecAggPlusWorkflow`` of the Message
API, whose SuperNodes start a fresh process for every message (NOTES.md: 230 s for 10 rounds of four
members); the federation here runs on Flower's long-lived client connections, where workflows cannot
run. Flower's mask generator (``pseudo_rand_gen``) also folds the shared key into a 32-bit seed; here
masks are ChaCha20 keystreams under the full 256-bit key. Threat model: an honest-but-curious
coordinator; without SecAgg's Shamir-shared self-masks a coordinator that lies about a drop-out and
then receives the late update could unmask it; the coordinator here never accepts a late update.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]
TARGET = 2**24  # quantization levels over [-clip_range, clip_range]
KEY_BYTES = 32


class SecAggError(ValueError):
    """A secure-aggregation message is malformed or cannot be unmasked; says which and why."""


def new_keypair() -> tuple[X25519PrivateKey, bytes]:
    sk = X25519PrivateKey.generate()
    return sk, sk.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _mask(sk: X25519PrivateKey, peer_pk: bytes, round_tag: bytes, size: int) -> U64:
    shared = sk.exchange(X25519PublicKey.from_public_bytes(peer_pk))
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"healthsec-secagg" + round_tag).derive(
        shared
    )
    enc = Cipher(algorithms.ChaCha20(key, b"\x00" * 16), mode=None).encryptor()
    stream = enc.update(b"\x00" * (8 * size))
    return np.frombuffer(stream, dtype=np.uint64).copy()


def _pks(blob: bytes) -> list[bytes]:
    if len(blob) % KEY_BYTES:
        raise SecAggError(f"public key list of {len(blob)} bytes is not a multiple of {KEY_BYTES}")
    return [blob[i : i + KEY_BYTES] for i in range(0, len(blob), KEY_BYTES)]


def flatten(params: Sequence[F64]) -> F64:
    return np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in params])


def unflatten(vec: F64, shapes: Sequence[tuple[int, ...]]) -> list[F64]:
    out, i = [], 0
    for s in shapes:
        n = int(np.prod(s)) if s else 1
        out.append(vec[i : i + n].reshape(s))
        i += n
    if i != vec.size:
        raise SecAggError(f"aggregate has {vec.size} values, model needs {i}")
    return out


def mask_update(
    params: Sequence[F64],
    weight: float,
    index: int,
    pk_blob: bytes,
    sk: X25519PrivateKey,
    round_tag: bytes,
    clip_range: float,
    rng: np.random.Generator,
) -> U64:
    """Member side: quantize ``[weight * params..., weight]`` and add the pairwise masks (mod 2^64)."""
    vec = np.append(flatten(params) * weight, weight)
    if not np.all(np.isfinite(vec)):
        raise SecAggError("update holds NaN/infinite values: not sent")
    pre = (np.clip(vec, -clip_range, clip_range) + clip_range) * (TARGET / (2 * clip_range))
    q = np.floor(pre + rng.random(pre.shape)).astype(np.uint64)  # unbiased stochastic rounding
    pks = _pks(pk_blob)
    if not 0 <= index < len(pks):
        raise SecAggError(f"member index {index} outside the {len(pks)} keys of this round")
    with np.errstate(over="ignore"):
        for j, pk in enumerate(pks):
            if j == index:
                continue
            m = _mask(sk, pk, round_tag, q.size)
            q = q + m if index < j else q - m
    return q


def recovery_share(
    index: int, pk_blob: bytes, sk: X25519PrivateKey, round_tag: bytes, dropped: Sequence[int], size: int
) -> U64:
    """Survivor side: the signed sum of this member's masks with the dropped members only."""
    pks = _pks(pk_blob)
    total = np.zeros(size, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for d in dropped:
            if d == index or not 0 <= d < len(pks):
                raise SecAggError(f"cannot reveal a mask with member index {d}")
            m = _mask(sk, pks[d], round_tag, size)
            total = total + m if index < d else total - m
    return total


def unmask_sum(
    masked: Sequence[U64], shares: Sequence[U64], members: int, clip_range: float
) -> tuple[F64, float]:
    """Coordinator side: sum the masked vectors, remove the revealed masks, dequantize.

    Returns the summed weighted update and the summed weight (the weighted mean is their ratio).
    """
    if not masked:
        raise SecAggError("no masked update to aggregate")
    size = masked[0].size
    total = np.zeros(size, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for v in masked:
            if v.size != size or v.dtype != np.uint64:
                raise SecAggError(f"masked update of {v.size} {v.dtype} values, expected {size} uint64")
            total = total + v
        for s in shares:
            # a survivor's share is the sum of the masks it added for dropped peers: remove it
            total = total - s
    signed = total.astype(np.int64).astype(np.float64)  # sums stay far below 2^63
    vec = signed * (2 * clip_range / TARGET) - members * clip_range
    return vec[:-1], float(vec[-1])
