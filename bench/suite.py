"""BraNet's benchmark suite: every figure the README quotes, in one bounded run.

    make bench                     # installs the peers, then runs this with the defaults
    python -m bench.suite --image IMG --data ../shared/data/busi --out bench/results.json

Sections, each a table on stdout and a key in the JSON:

1. machine: CPU, bf16/int8 units, torch, and the measured matrix rate (fp32, bf16, int8 GEMM),
   which sets each model's compute floor (its FLOPs over that rate);
2. classifier stages in-process: decode, preprocess, inference at batch 1 and 8 for fp32 eager,
   bf16 eager, bf16 compiled and int8 on ONNX Runtime (served where the card has it), encode;
   each inference also as a multiple of the floor (bf16 rate; int8 also of the int8 rate);
3. classifier servers head to head on the same weights and image: BraNet's classifier service,
   the naive Flask fp32 server and TorchServe: cold start, p50/p95/p99 at concurrency 1,
   throughput at 16, peak memory, the answer each gives; ratios to BraNet;
4. end to end through the gateway on the embedded stack (bench/e2e.py): classify-only, and
   with automatic ROI (extract_roi=true: BraNet's own segmenter, then the crop classified);
5. SAM ViT-B image encoder at 1024² (random weights: latency does not depend on them): fp32
   eager (the package as is, glibc's default allocator), fp32 eager with freed memory kept
   (the segmenter's allocator setting, and every row after it), fused attention, bf16, bf16
   compiled (the segmenter's default), int8 linear layers on bf16 compiled (where the CPU
   has VNNI), as a multiple of the floor,
   and box-prompt mask IoU of each against fp32 eager on --data images (boxes from their masks);
6. the model stages on the GPU, when there is one.
"""

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from segment_anything import SamPredictor
from torch.utils.flop_counter import FlopCounterMode

from bench.contenders import branet_server, flask_server, torchserve_server
from bench.e2e import measure_stack, print_stack, synthetic_png
from bench.serving import measure_server
from bench.timing import summary, timed_ms
from branet_classifier.classify import ResNet18Classifier
from branet_runtime.allocator import keep_freed_memory, return_freed_memory
from branet_runtime.precision import cpu_flags, cpu_has_bf16, cpu_has_vnni, resolve_precision
from branet_segmenter.acceleration import accelerate
from branet_segmenter.segment import BUILDERS
from branet_shared.images import validate_image

Row = dict[str, Any]


def matrix_rate_tflops(dtype: torch.dtype, device: str = "cpu", n: int = 2048) -> float:
    """The best of several n×n GEMMs: what this machine's matrix units reach (for int8,
    tera-operations: VNNI's multiply-accumulates)."""
    integer = dtype == torch.int8
    if integer:
        a = torch.randint(-128, 128, (n, n), dtype=dtype, device=device)
        b = torch.randint(-128, 128, (n, n), dtype=dtype, device=device)
    else:
        a = torch.randn(n, n, dtype=dtype, device=device)
        b = torch.randn(n, n, dtype=dtype, device=device)

    def run() -> None:
        torch._int_mm(a, b) if integer else a @ b
        if device == "cuda":
            torch.cuda.synchronize()

    best_ms = min(timed_ms(run, 8, warmup=2))
    return 2 * n**3 / best_ms / 1e9


def machine() -> Row:
    flags = cpu_flags()
    row: Row = {
        "cpu": platform.processor() or platform.machine(),
        "cpus": torch.get_num_threads(),
        "bf16_units": cpu_has_bf16(),
        "flags": sorted(flags & {"avx512_bf16", "amx_bf16", "amx_int8", "avx512_vnni", "avx2"}),
        "torch": torch.__version__,
        "fp32_tflops": matrix_rate_tflops(torch.float32),
        "bf16_tflops": matrix_rate_tflops(torch.bfloat16),
        "int8_tops": matrix_rate_tflops(torch.int8),
    }
    print("\n## 1. Machine")
    print(
        f"{row['cpus']} threads, {', '.join(row['flags'])}; torch {row['torch']}; "
        f"GEMM fp32 {row['fp32_tflops']:.3f} TFLOP/s, bf16 {row['bf16_tflops']:.3f} TFLOP/s, "
        f"int8 {row['int8_tops']:.3f} TOP/s"
    )
    return row


def forward_flops(network: torch.nn.Module, inputs: torch.Tensor) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        network(inputs)
    return int(counter.get_total_flops())


def classifier_stages(card: Path, image: bytes, rate: Row, runs: int) -> Row:
    """Each stage of one classification, in this process."""
    validated = validate_image(image)
    fp32 = ResNet18Classifier.load(card, "fp32")
    inputs = fp32.preprocess(validated.image)
    flops = forward_flops(fp32.network, inputs)
    precision = resolve_precision("auto")
    started = time.perf_counter()
    compiled = ResNet18Classifier.load(card, precision, compiled=True)
    compiled.warm_up()
    compile_s = time.perf_counter() - started
    variants = {
        "fp32 eager": fp32,
        f"{precision} eager": ResNet18Classifier.load(card, precision),
        f"{precision} compiled": compiled,
    }
    served = ResNet18Classifier.load(card, "auto")
    if served.precision == "int8":
        variants["int8 ONNX Runtime"] = served
    floor_ms = flops / (rate[f"{precision}_tflops"] * 1e9)
    int8_floor_ms = flops / (rate["int8_tops"] * 1e9)
    rows: list[Row] = [
        {"stage": "decode + validate", **summary(timed_ms(lambda: validate_image(image), runs))},
        {
            "stage": "preprocess",
            **summary(timed_ms(lambda: fp32.preprocess(validated.image), runs)),
        },
    ]
    for batch_size in (1, 8):
        batch = inputs.repeat(batch_size, 1, 1, 1)
        for name, model in variants.items():
            times = timed_ms(lambda m=model, b=batch: m.predict(b), runs)  # type: ignore[misc]
            row = {"stage": f"inference {name}, batch {batch_size}", **summary(times)}
            row["x_floor"] = row["p50_ms"] / (floor_ms * batch_size)
            if model.precision == "int8":
                row["x_int8_floor"] = row["p50_ms"] / (int8_floor_ms * batch_size)
            rows.append(row)
    answer = served.classify(validated.image)
    rows.append(
        {"stage": "encode (response JSON)", **summary(timed_ms(answer.model_dump_json, runs))}
    )
    print(f"\n## 2. Classifier stages ({card.name}, image {validated.width}×{validated.height})")
    print(
        f"ResNet18 at {fp32.card.input_size}²: {flops / 1e9:.2f} GFLOP per image; floor "
        f"{floor_ms:.2f} ms at the {precision} GEMM rate, {int8_floor_ms:.2f} ms at the int8 "
        f"rate; compile + warm-up {compile_s:.1f} s; served: {served.precision}"
    )
    print(f"{'stage':<40} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'x floor':>8} {'x int8':>7}")
    for row in rows:
        floor = f"{row['x_floor']:.2f}" if "x_floor" in row else ""
        int8 = f"{row['x_int8_floor']:.2f}" if "x_int8_floor" in row else ""
        print(
            f"{row['stage']:<40} {row['p50_ms']:>8.3f} {row['p95_ms']:>8.3f} "
            f"{row['p99_ms']:>8.3f} {floor:>8} {int8:>7}"
        )
    return {
        "gflop": flops / 1e9,
        "floor_ms": floor_ms,
        "int8_floor_ms": int8_floor_ms,
        "served_precision": served.precision,
        "compile_s": compile_s,
        "rows": rows,
    }


def servers(card: Path, image: bytes, requests: int, peers: bool, workdir: Path) -> list[Row]:
    """BraNet's classifier service against the naive and the established way to serve it."""
    contenders = [branet_server(card, image, "ultrasound", {})]
    if peers:
        contenders += [flask_server(card, image), torchserve_server(card, image, workdir / "ts")]
    results = []
    for server in contenders:
        log = workdir / f"{server.name}.log"
        try:
            results.append(measure_server(server, log, requests))
        except (RuntimeError, OSError) as exc:  # a peer that will not run here is reported
            print(f"{server.name}: {exc}")
            results.append({"name": server.name, "error": str(exc)})
    ours = results[0]
    print("\n## 3. Classifier servers, same weights, same image")
    print(
        f"{'server':<12} {'cold s':>7} {'c1 p50':>7} {'c1 p95':>7} {'c1 p99':>7} "
        f"{'c16 rps':>8} {'c16 p50':>8} {'RSS MiB':>8} {'P(mal.)':>8} {'ours/them rps':>13}"
    )
    for result in results:
        if "error" in result:
            print(f"{result['name']:<12} failed: {result['error']}")
            continue
        one, sixteen = result["load"]
        ratio = ours["load"][1]["throughput_rps"] / sixteen["throughput_rps"]
        result["throughput_ratio_c16"] = ratio
        result["p50_ratio_c1"] = one["p50_ms"] / ours["load"][0]["p50_ms"]
        print(
            f"{result['name']:<12} {result['cold_start_s']:>7.1f} {one['p50_ms']:>7.1f} "
            f"{one['p95_ms']:>7.1f} {one['p99_ms']:>7.1f} {sixteen['throughput_rps']:>8.1f} "
            f"{sixteen['p50_ms']:>8.1f} {result['peak_rss_mib']:>8.0f} "
            f"{result['p_malignant']:>8.4f} {ratio:>12.2f}x"
        )
    return results


def box_prompts(data: Path | None, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(RGB image, box) pairs: BUSI-style `<name>_mask.png` beside each image, box from it."""
    if data is None:
        return []
    pairs = []
    for mask_path in sorted(data.rglob("*_mask.png"))[:count]:
        image_path = mask_path.with_name(mask_path.name.replace("_mask", ""))
        mask = np.asarray(Image.open(mask_path).convert("L")) > 0
        if not image_path.exists() or not mask.any():
            continue
        ys, xs = np.nonzero(mask)
        box = np.array([xs.min(), ys.min(), xs.max(), ys.max()])
        pairs.append((np.asarray(Image.open(image_path).convert("RGB")), box))
    return pairs


def sam_masks(sam: Any, prompts: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    predictor = SamPredictor(sam)
    masks = []
    with torch.inference_mode():
        for rgb, box in prompts:
            predictor.set_image(rgb)
            found, scores, _ = predictor.predict(box=box, multimask_output=True)
            masks.append(found[int(np.argmax(scores))])
    return masks


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def sam_encoder(rate: Row, data: Path | None, prompts: int, repeats: int) -> list[Row]:
    """The ViT-B image encoder as the package ships it and as the segmenter runs it.

    The first row runs with glibc's default allocator, as a plain process would; the rest with
    freed memory kept (`keep_freed_memory`, the segmenter's default), the fp32 row again
    first, so that the allocator's share of the speed-up stands apart."""
    torch.manual_seed(0)
    state = BUILDERS["vit_b"]().state_dict()
    pixels = torch.randn(1, 3, 1024, 1024)
    pairs = box_prompts(data, prompts)
    precision = resolve_precision("auto")
    variants: list[tuple[str, Callable[[Any], Any]]] = [
        ("fp32 eager (package)", lambda sam: sam),
        ("fp32 eager, freed memory kept", lambda sam: sam),
        ("fp32 fused attention", lambda sam: accelerate(sam, "fp32", compiled=False)),
        (f"{precision} fused attention", lambda sam: accelerate(sam, precision, compiled=False)),
        (f"{precision} compiled", lambda sam: accelerate(sam, precision, compiled=True)),
    ]
    served = len(variants) - 1  # the segmenter's `auto`
    if cpu_has_vnni():
        variants.append(
            (f"int8 linears, {precision} compiled", lambda sam: accelerate(sam, "int8", True))
        )
    rows: list[Row] = []
    reference: list[np.ndarray] = []
    flops = 0
    return_freed_memory()
    for name, build in variants:
        if len(rows) == 1:
            keep_freed_memory()
        sam = BUILDERS["vit_b"]()
        sam.load_state_dict(state)
        started = time.perf_counter()
        sam = build(sam.eval())
        with torch.inference_mode():
            sam.image_encoder(pixels)  # compiles, if it is to be compiled
        first_s = time.perf_counter() - started
        if not flops:
            flops = forward_flops(sam.image_encoder, pixels)

        def encode(encoder: torch.nn.Module = sam.image_encoder) -> None:
            with torch.inference_mode():
                encoder(pixels)

        times = timed_ms(encode, repeats, warmup=0)
        masks = sam_masks(sam, pairs)
        reference = reference or masks
        ious = [iou(a, b) for a, b in zip(masks, reference, strict=True)]
        rows.append(
            {
                "variant": name,
                "served": len(rows) == served,
                "freed_memory_kept": len(rows) > 0,
                "first_call_s": first_s,
                "p50_s": statistics.median(times) / 1000,
                "min_iou": min(ious) if ious else None,
                "mean_iou": statistics.mean(ious) if ious else None,
            }
        )
    floor_s = flops / (rate[f"{precision}_tflops"] * 1e12)
    print(f"\n## 5. SAM ViT-B image encoder, 1024², {flops / 1e9:.0f} GFLOP, floor {floor_s:.2f} s")
    print(f"   mask IoU against fp32 eager: box prompts from {len(pairs)} --data masks")
    print(
        f"{'variant':<34} {'p50 s':>7} {'speed-up':>9} {'vs kept':>8} {'x floor':>8} "
        f"{'1st call s':>10} {'min IoU':>8} {'mean IoU':>9}"
    )
    for row in rows:
        row["speed_up"] = rows[0]["p50_s"] / row["p50_s"]
        row["speed_up_vs_kept"] = rows[1]["p50_s"] / row["p50_s"]
        row["x_floor"] = row["p50_s"] / floor_s
        agreement = (
            f"{row['min_iou']:>8.4f} {row['mean_iou']:>9.4f}" if row["min_iou"] is not None else ""
        )
        print(
            f"{row['variant']:<34} {row['p50_s']:>7.2f} {row['speed_up']:>8.2f}x "
            f"{row['speed_up_vs_kept']:>7.2f}x {row['x_floor']:>8.2f} {row['first_call_s']:>10.1f} "
            f"{agreement}"
        )
    return rows


def gpu_stages(card: Path, image: bytes) -> Row | None:
    """The same model stages on CUDA, reported apart from the CPU's."""
    if not torch.cuda.is_available():
        print("\n## 6. GPU: none here")
        return None
    rate = {
        "fp32_tflops": matrix_rate_tflops(torch.float32, "cuda", 8192),
        "bf16_tflops": matrix_rate_tflops(torch.bfloat16, "cuda", 8192),
    }
    model = ResNet18Classifier.load(card, "fp32")
    inputs = model.preprocess(validate_image(image).image).cuda()
    rows: list[Row] = []
    for dtype in (torch.float32, torch.bfloat16):
        network = model.network.to("cuda", dtype)
        for batch_size in (1, 8, 64):
            batch = inputs.repeat(batch_size, 1, 1, 1).to(dtype)

            def run(n: torch.nn.Module = network, b: torch.Tensor = batch) -> None:
                with torch.inference_mode():
                    n(b)
                torch.cuda.synchronize()

            rows.append(
                {"stage": f"ResNet18 {dtype}, batch {batch_size}", **summary(timed_ms(run, 50))}
            )
    encoder = accelerate(BUILDERS["vit_b"]().eval().cuda(), "fp32", compiled=False).image_encoder
    pixels = torch.randn(1, 3, 1024, 1024, device="cuda")
    for dtype in (torch.float32, torch.bfloat16):
        encoder = encoder.to(dtype)

        def encode(e: torch.nn.Module = encoder, d: torch.dtype = dtype) -> None:
            with torch.inference_mode():
                e(pixels.to(d))
            torch.cuda.synchronize()

        rows.append({"stage": f"SAM ViT-B embedding {dtype}", **summary(timed_ms(encode, 10))})
    print(f"\n## 6. GPU: {torch.cuda.get_device_name()}")
    for row in rows:
        print(f"{row['stage']:<40} {row['p50_ms']:>9.2f} ms")
    return {"device": torch.cuda.get_device_name(), **rate, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--image", type=Path, default=None, help="the image every server gets (default: noise)"
    )
    parser.add_argument("--model", type=Path, default=Path("models/ultrasound.json"))
    parser.add_argument("--data", type=Path, default=None, help="BUSI-style folder for mask IoU")
    parser.add_argument("--sam-prompts", type=int, default=4, help="images for SAM mask IoU")
    parser.add_argument("--requests", type=int, default=200, help="per load level")
    parser.add_argument("--runs", type=int, default=100, help="per in-process stage")
    parser.add_argument("--no-peers", action="store_true", help="skip Flask and TorchServe")
    parser.add_argument("--skip", nargs="*", default=[], choices=["stack", "sam"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    image = args.image.read_bytes() if args.image is not None else synthetic_png()
    card = args.model.resolve()
    started = time.perf_counter()
    results: dict[str, Any] = {"argv": sys.argv[1:], "machine": machine()}
    results["classifier_stages"] = classifier_stages(card, image, results["machine"], args.runs)
    with tempfile.TemporaryDirectory() as workdir:
        results["servers"] = servers(card, image, args.requests, not args.no_peers, Path(workdir))
    if "stack" not in args.skip:
        for key, extract_roi in (("stack", False), ("stack_automatic_roi", True)):
            kind = "automatic-ROI" if extract_roi else "classify-only"
            print(f"\n## 4. End to end through the gateway ({kind} analyses)")
            results[key] = measure_stack(image, card.parent, args.requests, extract_roi)
            print_stack(results[key])
    if "sam" not in args.skip:
        results["sam"] = sam_encoder(results["machine"], args.data, args.sam_prompts, 3)
    results["gpu"] = gpu_stages(card, image)
    results["elapsed_s"] = time.perf_counter() - started
    print(f"\nsuite finished in {results['elapsed_s'] / 60:.1f} min")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
