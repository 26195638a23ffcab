"""On a CUDA machine (``pytest -m gpu``, run by ``benchmarks/gpu_check.sh``; skipped elsewhere): fp32
logits on the GPU equal the CPU's, a bf16 GPU map agrees with the CPU map of a trained bundle, and the
embedded cluster puts each worker on its own GPU."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("head", ["patch", "dense"])
def test_cuda_fp32_logits_equal_the_cpu_logits(head: str) -> None:
    from geohsi.models.decoder import build_segmenter
    from geohsi.models.spectralgpt import build_classifier

    torch.manual_seed(0)
    model = (build_classifier("small", 9) if head == "patch" else build_segmenter("small", 9)).eval()
    x = torch.randn(16, 12, 32, 32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    with torch.inference_mode():
        cpu = model(x)
        gpu = model.to("cuda")(x.to("cuda")).cpu()
    rel = float((gpu - cpu).abs().max() / cpu.abs().max())
    assert rel <= 1e-4, rel


def test_bf16_gpu_map_agrees_with_the_cpu_map(ip_mid, ip_bundle) -> None:
    from geohsi.classification import predict_map
    from geohsi.classification.cluster import open_cluster

    with open_cluster(device="cuda") as info:
        assert info.device == "cuda" and info.gpu_resources
        gpu = predict_map(ip_mid, ip_bundle, info.client, device="cuda", precision="bf16", chunks=36).compute(
            optimize_graph=False
        )
    with open_cluster(workers=1) as info:
        cpu = predict_map(ip_mid, ip_bundle, info.client, chunks=36).compute()
    agree = float((gpu.values == cpu.values).mean())
    assert agree >= 0.999, agree


def test_each_embedded_gpu_worker_has_its_own_gpu() -> None:
    from geohsi.classification.cluster import open_cluster

    def own_gpu() -> str:
        import torch

        return str(torch.cuda.get_device_properties(0).uuid)

    with open_cluster(device="cuda") as info:
        uuids = list(info.client.run(own_gpu).values())
    assert len(uuids) == torch.cuda.device_count() and len(set(uuids)) == len(uuids)


def test_spectral_transform_on_the_gpu_equals_the_host_transform(ip_scene) -> None:
    """The PixelMap on CUDA (float64, as on the host) gives the host's channels on Indian Pines."""
    import dask
    import numpy as np

    from geohsi.scene import cube, open_scene
    from geohsi.spectral.transform import SpectralTransform

    ds = open_scene(ip_scene)
    for reduction in ("pca", "s2"):
        t = SpectralTransform.fit(ds, reduction)
        with dask.config.set(scheduler="synchronous"):
            ref = np.asarray(t.apply(ds).values)
            pm = t.pixel_map(ds)
            raw = np.asarray(cube(ds).data[pm.bands].compute())
        got = pm.apply(pm.raw_from_numpy(raw, "cuda")).cpu().numpy()
        assert np.array_equal(np.isnan(got), np.isnan(ref))
        ok = ~np.isnan(ref)
        np.testing.assert_allclose(got[ok], ref[ok], rtol=1e-6, atol=1e-6)
