"""Collective communication time inside one worker, vectorised over candidates.

A worker whose GPUs span several scale-up domains (DeepSeek-R1 FP8 needs two 8-GPU H100
nodes) does not push every byte of a collective through the slow scale-out NICs: NCCL
and the engines' MoE kernels are hierarchical.

- All-reduce of S bytes over n GPUs, d of them in each of k = n / d domains: a
  reduce-scatter inside each domain (each GPU sends (d - 1) / d S over the scale-up
  links), an all-reduce of the GPU's S / d shard across the k domains (ring over each
  GPU's own NIC: 2 (k - 1) / k S / d), then an all-gather inside the domain. Time =
  2 (d - 1) / d S / B_up + 2 (k - 1) / k S / (d B_out) + latencies. With k = 1 this is
  the ring all-reduce 2 (n - 1) / n S / B_up. Latency: one scale-up latency inside a
  domain; across domains two (reduce-scatter, all-gather) plus 2 (k - 1) sequential NIC
  steps, which is what small decode-step messages pay. Charging the flat ring 2 (n - 1) / n S to
  the NICs instead made a 16-GPU H100 all-reduce 6x too slow (TP16 across two nodes:
  1.875 S / 50 GB/s against 1.75 S / 450 GB/s + 0.125 S / 50 GB/s).
- All-to-all (MoE dispatch and combine) over ep GPUs, d per domain: a GPU's traffic
  splits evenly over its ep - 1 peers; the d - 1 in its domain are reached over the
  scale-up links, the ep - d others over the NIC, concurrently, so the slower share sets
  the time.

Bandwidths are per GPU and per direction, already scaled by the calibrated efficiency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Links:
    """Per-GPU bandwidth (bytes/s, each direction, efficiency applied) and latency (s) of
    the scale-up links and of the scale-out NIC."""

    bw_up: np.ndarray
    bw_out: np.ndarray
    lat_up: np.ndarray
    lat_out: np.ndarray


def members_per_domain(group: np.ndarray, domain: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """GPUs of a group that share one scale-up domain, when ``inner`` GPUs of another
    parallel dimension are packed inside each group member's domain first (1: none)."""
    per = np.floor(np.asarray(domain, dtype=np.float64) / np.maximum(inner, 1.0))
    return np.clip(per, 1.0, np.maximum(group, 1.0))


def allreduce_s(n: np.ndarray, nbytes: np.ndarray, per_domain: np.ndarray, ln: Links) -> np.ndarray:
    """Seconds for a hierarchical all-reduce of ``nbytes`` over ``n`` GPUs."""
    n = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    d = np.clip(per_domain, 1.0, n)
    k = np.ceil(n / d - 1e-9)
    intra = 2.0 * (d - 1.0) / d * nbytes / ln.bw_up
    inter = 2.0 * (k - 1.0) / k * nbytes / d / np.maximum(ln.bw_out, 1e-9)
    # inside one domain a single (one-shot or NVLS) pass; across domains the reduce-scatter
    # and all-gather each pay the scale-up latency and the cross-domain ring its 2 (k - 1)
    # sequential NIC steps
    local = np.where(d > 1, ln.lat_up, 0.0)
    lat = np.where(k > 1, 2.0 * local + 2.0 * (k - 1.0) * ln.lat_out, local)
    return np.where(n > 1, intra + inter + lat, 0.0)


def all_to_all_s(
    n: np.ndarray, nbytes: np.ndarray, per_domain: np.ndarray, ln: Links
) -> np.ndarray:
    """Seconds for one all-to-all in which each GPU sends ``nbytes`` in all, split evenly
    over its n - 1 peers."""
    n = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    d = np.clip(per_domain, 1.0, n)
    peers = np.maximum(n - 1.0, 1.0)
    intra = nbytes * (d - 1.0) / peers / ln.bw_up
    inter = nbytes * (n - d) / peers / np.maximum(ln.bw_out, 1e-9)
    lat = np.where(n > d, ln.lat_out, ln.lat_up)
    return np.where(n > 1, np.maximum(intra, inter) + lat, 0.0)


def pipeline_hops_s(
    pp: np.ndarray, stage_gpus: np.ndarray, domain: np.ndarray, nbytes: np.ndarray, ln: Links
) -> np.ndarray:
    """Seconds for the pp - 1 stage-to-stage hand-offs of ``nbytes`` of activations each.

    Stages are placed in order, as many whole ones in each scale-up domain as fit
    (floor(domain / stage_gpus)); a hand-off between stages in the same domain goes over
    the scale-up links, one between domains over the NICs (each GPU to its peer in the
    next stage, concurrently). A stage wider than a domain hands off across domains every
    time. TP8 x PP2 on 8-GPU H100 nodes: one hop, over the 50 GB/s NIC, not NVLink."""
    pp = np.maximum(np.asarray(pp, dtype=np.float64), 1.0)
    per_domain = np.floor(np.asarray(domain, dtype=np.float64) / np.maximum(stage_gpus, 1.0))
    # a stage wider than a domain counts as one per domain: every hop crosses
    crossing = np.ceil(pp / np.maximum(per_domain, 1.0)) - 1.0
    local = pp - 1.0 - crossing
    up = nbytes / ln.bw_up + ln.lat_up
    out = nbytes / np.maximum(ln.bw_out, 1e-9) + ln.lat_out
    return local * up + crossing * out


def kv_paths(kv_split: np.ndarray, pp: np.ndarray) -> np.ndarray:
    """GPUs of a worker that hold distinct parts of one request's KV cache: its tensor
    split (KV heads over tp; 1 for an MLA latent every tp rank keeps whole) times the
    pipeline stages (layers). Attention-DP puts a request on one rank, whose tp GPUs
    these are, so data-parallel ranks add none."""
    return np.maximum(np.asarray(kv_split, dtype=np.float64), 1.0) * np.maximum(pp, 1.0)


def kv_transfer_s(
    nbytes: np.ndarray,
    send_paths: np.ndarray,
    recv_paths: np.ndarray,
    bw: np.ndarray,
    lat: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Seconds to move one request's KV cache (``nbytes``, one copy) from a prefill worker
    to a decode worker, each GPU over its own link (``bw`` per GPU and direction): the
    side with fewer parallel paths moves the most per GPU. Prefill TP8 to decode TP8 of a
    GQA model: eight shards in parallel; an MLA latent (replicated over tp) or a decode
    worker with attention-DP (the request on one rank of one GPU) moves it whole through
    one GPU's link."""
    paths = np.maximum(np.minimum(send_paths, recv_paths), 1.0)
    return nbytes / paths / np.maximum(bw, 1e-9) + lat
