"""`xhuma simulate`: the simulated providers and bank, each a real server speaking its real
protocol (they share no code with the switch they test)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xhuma.cli.common import console, serving

app = typer.Typer(help="Simulated providers: real HTTP servers speaking the real protocols.", no_args_is_help=True)


@app.command("ppu")
def simulate_ppu(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8090,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    name: Annotated[str, typer.Option(help="Provider name used in its identifiers.")] = "sim",
    latency_ms: Annotated[float, typer.Option(help="Mean added latency per request.")] = 0.0,
    failure_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of purchases answered 500 after being recorded.")
    ] = 0.0,
    tst011_delay: Annotated[float, typer.Option(help="Seconds TST011 purchases hang before their 504.")] = 10.0,
    seed: Annotated[int | None, typer.Option(help="Random seed, for a reproducible run.")] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="Serve HTTPS only, with this PEM certificate.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="The certificate's PEM key.")] = None,
    client_ca: Annotated[Path | None, typer.Option(help="Require client certificates issued by this CA.")] = None,
    oauth_client: Annotated[
        str | None, typer.Option(help="Require bearer tokens from /_sim/oauth/token for this ID:SECRET.")
    ] = None,
    token_seconds: Annotated[float, typer.Option(min=0.1, help="How long its tokens last.")] = 3600.0,
    verify_signatures_with: Annotated[
        Path | None, typer.Option(help="Require x-jwt-signature on every request, verified with this PEM public key.")
    ] = None,
) -> None:
    """A provider speaking the Prepaid Utility Service Interface v3 (test meters TST001-TST011)."""
    from xhuma.simulators.guard import GuardConfig
    from xhuma.simulators.ppu import SimulatorConfig, run

    config = SimulatorConfig(
        name=name, latency_ms=latency_ms, failure_rate=failure_rate, tst011_delay=tst011_delay, seed=seed
    )
    if (tls_cert is None) != (tls_key is None):
        raise typer.BadParameter("--tls-cert and --tls-key go together", param_hint="--tls-cert")
    if client_ca is not None and tls_cert is None:
        raise typer.BadParameter("mutual TLS needs --tls-cert and --tls-key", param_hint="--client-ca")
    client = None
    if oauth_client is not None:
        client_id, colon, secret = oauth_client.partition(":")
        if not colon or not client_id:
            raise typer.BadParameter("ID:SECRET", param_hint="--oauth-client")
        client = (client_id, secret)
    guard = GuardConfig(tls_cert, tls_key, client_ca, client, token_seconds, verify_signatures_with)
    guarded = tls_cert is not None or client is not None or verify_signatures_with is not None
    serving("simulate ppu", lambda: run(config, host, port, guard if guarded else None))


@app.command("vouchers")
def simulate_vouchers(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8091,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    name: Annotated[str, typer.Option(help="Provider name used in its identifiers.")] = "vouchr",
    kind: Annotated[str, typer.Option(help="full, or stellr (no advices, retries, redemptions, refunds).")] = "full",
    latency_ms: Annotated[float, typer.Option(help="Mean added latency per request.")] = 0.0,
    lose_responses: Annotated[int, typer.Option(min=0, help="Issue the next N vouchers, then never answer.")] = 0,
    mode: Annotated[str, typer.Option(help="normal, unavailable (503), hang or garbage.")] = "normal",
    seed: Annotated[int | None, typer.Option(help="Random seed, for a reproducible run.")] = None,
) -> None:
    """A voucher provider speaking the Single Use Voucher interface v1."""
    from xhuma.simulators.vouchers import KINDS, MODES, VoucherSimConfig, run

    if kind not in KINDS:
        raise typer.BadParameter(f"one of {', '.join(KINDS)}", param_hint="--kind")
    if mode not in MODES:
        raise typer.BadParameter(f"one of {', '.join(MODES)}", param_hint="--mode")
    config = VoucherSimConfig(
        name=name, kind=kind, latency_ms=latency_ms, mode=mode, lose_responses=lose_responses, seed=seed
    )
    serving("simulate vouchers", lambda: run(config, host, port))


@app.command("fleet")
def simulate_fleet(
    port: Annotated[int, typer.Option(help="Port to listen on; each provider has its own base path.")] = 9100,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    seed: Annotated[int | None, typer.Option(help="Random seed, for a reproducible run.")] = None,
    config_out: Annotated[
        Path | None, typer.Option(help="Write the switch's [[providers]] for this fleet to this file.")
    ] = None,
) -> None:
    """The ten PPU providers xhuma supports, each with its own coverage, capabilities and latency."""
    from xhuma.httpserver import run_asgi
    from xhuma.simulators.ppu import build_fleet_app, fleet_configs, fleet_switch_config

    configs = fleet_configs(seed)
    base_url = f"http://{host}:{port}"
    if config_out is not None:
        config_out.write_text(fleet_switch_config(configs, base_url))
    for config in configs:
        console.print(f"{config.name:<12} {base_url}/{config.name}/prepaidutility/v3", markup=False)
    serving("simulate fleet", lambda: run_asgi(build_fleet_app(configs), host, port))


@app.command("bank")
def simulate_bank(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8095,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    xhuma_url: Annotated[str, typer.Option(help="Where to send status reports.")] = "http://127.0.0.1:8080",
    username: Annotated[str, typer.Option(help="The bank's credential at xhuma (role bank).")] = "bank",
    password: Annotated[str, typer.Option(help="Its password.")] = "bank-pw",
    nack_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of deliveries answered 503.")] = 0.0,
    hang_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share never answered.")] = 0.0,
    reject_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share rejected (an unpaid).")] = 0.0,
    silent_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share acknowledged, never reported.")] = 0.0,
    seed: Annotated[int | None, typer.Option(help="Random seed, for a reproducible run.")] = None,
    signing_key: Annotated[
        Path | None, typer.Option(help="Sign status reports (x-jwt-signature) with this PEM private key.")
    ] = None,
) -> None:
    """A homing bank taking inbound EFT credits and debits and reporting outcomes back."""
    from xhuma.simulators.bank import BankConfig, run

    config = BankConfig(
        xhuma_url=xhuma_url,
        username=username,
        password=password,
        nack_rate=nack_rate,
        hang_rate=hang_rate,
        reject_rate=reject_rate,
        silent_rate=silent_rate,
        seed=seed,
        signing_key=signing_key,
    )
    serving("simulate bank", lambda: run(config, host, port))
