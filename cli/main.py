"""The `branet` command: run the local stack (up, down, status, logs) and analyse images."""

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from branet_cli.stack import Ports, Stack

DEFAULT_HOME = Path(os.environ.get("BRANET_HOME", ".branet"))
DEFAULT_URL = os.environ.get("BRANET_URL", "http://127.0.0.1:8080")


def _stack(args: argparse.Namespace) -> Stack:
    ports = Ports(args.gateway_port, args.segmenter_port, args.classifier_port)
    return Stack(args.home, ports, emulated_cloud=getattr(args, "emulated_cloud", False))


def cmd_up(args: argparse.Namespace) -> int:
    stack = _stack(args)
    try:
        stack.up(timeout_s=args.timeout)
    except RuntimeError as exc:
        print(f"branet: {exc}", file=sys.stderr)
        return 1
    return cmd_status(args)


def cmd_down(args: argparse.Namespace) -> int:
    _stack(args).down()
    print("stopped")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    stack = _stack(args)
    print(f"{'service':<11} {'pid':>7}  {'url':<23} {'alive':<6} ready")
    running_emulators = [e for e in stack.emulators if stack.pid(e) is not None]
    for service in [*running_emulators, *stack.services]:
        pid = stack.pid(service)
        alive = service.alive()
        ready = _readiness(f"{service.url}/readyz") if alive and service.http_health else "-"
        alive_text = "yes" if alive else "no"
        print(f"{service.name:<11} {pid or '-':>7}  {service.url:<23} {alive_text:<6} {ready}")
    print(f"data and logs: {stack.home}")
    return 0


def _readiness(url: str) -> str:
    try:
        response = httpx.get(url, timeout=5.0)
        body = response.json()
    except (httpx.HTTPError, ValueError):
        return "unknown"
    if response.status_code == 200:
        return "yes"
    reasons = [c.get("detail", "") for c in body.get("checks", {}).values() if not c.get("ok")]
    return "no: " + "; ".join(r for r in reasons if r)


def cmd_logs(args: argparse.Namespace) -> int:
    stack = _stack(args)
    services = [s for s in [*stack.emulators, *stack.services] if args.service in (None, s.name)]
    for service in services:
        path = stack.log_file(service)
        if path.exists():
            lines = path.read_text(errors="replace").splitlines()[-args.lines :]
            print("\n".join(f"{service.name}| {line}" for line in lines))
    if args.follow:
        _follow([stack.log_file(s) for s in services], [s.name for s in services])
    return 0


def _follow(paths: list[Path], names: list[str]) -> None:
    offsets = {p: p.stat().st_size if p.exists() else 0 for p in paths}
    try:
        while True:
            for path, name in zip(paths, names, strict=True):
                if path.exists() and path.stat().st_size > offsets[path]:
                    with path.open("rb") as handle:
                        handle.seek(offsets[path])
                        chunk = handle.read().decode(errors="replace")
                        offsets[path] = handle.tell()
                    for line in chunk.splitlines():
                        print(f"{name}| {line}", flush=True)
            time.sleep(0.5)
    except KeyboardInterrupt:
        return


def cmd_analyze(args: argparse.Namespace) -> int:
    fields = {"modality": args.modality, "extract_roi": str(args.roi or bool(args.box)).lower()}
    if args.box:
        fields["box"] = args.box
    with args.image.open("rb") as image:
        try:
            response = httpx.post(
                f"{args.url}/v1/analyses",
                files={"file": (args.image.name, image)},
                data=fields,
                timeout=args.timeout,
            )
        except httpx.HTTPError as exc:
            print(f"branet: cannot reach the gateway at {args.url}: {exc}", file=sys.stderr)
            return 1
    body = response.json()
    if args.json or response.status_code != 201:
        print(json.dumps(body, indent=2))
        return 0 if response.status_code == 201 else 1
    print(analysis_summary(args.image.name, body))
    return 0


def analysis_summary(name: str, body: dict[str, Any]) -> str:
    """An Analysis for people: the label at the model's threshold, the lesion's box, each
    caveat in full, the model and the id."""
    probs, models = body["probabilities"], body["models"]
    lines = [
        f"{name}: {body['label'].upper()}  (benign {probs['benign']:.1%}, malignant"
        f" {probs['malignant']:.1%}; malignant from {body['decision_threshold']:.1%})"
    ]
    roi = body.get("roi")
    if roi is not None:
        box = f", box {roi['bbox']}" if roi.get("bbox") else ""
        lines.append(f"lesion found: {roi['lesion_found']}{box}")
    lines += [f"note ({caveat['code']}): {caveat['detail']}" for caveat in body["caveats"]]
    lines.append(f"model: {models['classifier']['name']} {models['classifier']['version']}")
    lines.append(f"id: {body['id']}   total {body['timings']['total_ms']:.0f} ms")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="branet",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"defaults: the gateway at {DEFAULT_URL}, the stack's state in {DEFAULT_HOME}; "
        "`branet COMMAND --help` lists a command's options and their defaults",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    defaults = argparse.ArgumentDefaultsHelpFormatter

    def stack_command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, formatter_class=defaults)
        sub.add_argument("--home", type=Path, default=DEFAULT_HOME, help="state folder")
        sub.add_argument("--gateway-port", type=int, default=Ports.gateway)
        sub.add_argument("--segmenter-port", type=int, default=Ports.segmenter)
        sub.add_argument("--classifier-port", type=int, default=Ports.classifier)
        return sub

    up = stack_command("up", "start the three services in the background")
    up.add_argument("--timeout", type=float, default=120.0, help="seconds to wait per service")
    up.add_argument(
        "--emulated-cloud",
        action="store_true",
        help="GCS and Firestore emulators as the stores (ports 8083, 8084)",
    )
    up.set_defaults(run=cmd_up)
    stack_command("down", "stop the services").set_defaults(run=cmd_down)
    stack_command("status", "show each service's liveness and readiness").set_defaults(
        run=cmd_status
    )
    logs = stack_command("logs", "print the services' logs")
    logs.add_argument(
        "service",
        nargs="?",
        choices=["gateway", "segmenter", "classifier", "gcs-emulator", "firestore-emulator"],
    )
    logs.add_argument("-n", "--lines", type=int, default=50)
    logs.add_argument("-f", "--follow", action="store_true")
    logs.set_defaults(run=cmd_logs)

    analyze = commands.add_parser(
        "analyze", help="analyse one image through the gateway", formatter_class=defaults
    )
    analyze.add_argument("image", type=Path)
    analyze.add_argument("--modality", required=True, choices=["ultrasound", "mammography"])
    analyze.add_argument("--roi", action="store_true", help="extract the lesion with SAM first")
    analyze.add_argument("--box", help="x0,y0,x1,y1 around the lesion (implies --roi)")
    analyze.add_argument("--url", default=DEFAULT_URL, help="gateway URL")
    analyze.add_argument("--json", action="store_true", help="print the whole Analysis")
    analyze.add_argument("--timeout", type=float, default=300.0)
    analyze.set_defaults(run=cmd_analyze)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.run(args)
    return code


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
