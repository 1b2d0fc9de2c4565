#!/usr/bin/env python3
"""Accountant test vectors for ConclavePrivacyTests, from two oracles used only here:
Google's dp-accounting (RDP and PLD accountants) and an independent high-precision computation with mpmath
(numerical integration of the Rényi divergence, no series). Where dp-accounting's RDP at fractional orders
disagrees with mpmath (its series has a sign error in 0.4.4-0.6.0), mpmath is the reference.

    python3 -m venv .venv-oracle && .venv-oracle/bin/pip install dp-accounting mpmath
    .venv-oracle/bin/python Tests/ConclavePrivacyTests/Fixtures/make_fixtures.py
"""
import json
import math
import os

import dp_accounting
import mpmath as mp
from dp_accounting import dp_event
from dp_accounting.pld import pld_privacy_accountant
from dp_accounting.rdp import rdp_privacy_accountant

mp.mp.dps = 40


def rdp_mpmath(q, sigma, alpha):
    """RDP of the Poisson-subsampled Gaussian by integrating A_a = E_{z~N(0,s^2)}[((1-q) + q e^{(2z-1)/2s^2})^a]."""
    q, s, a = mp.mpf(q), mp.mpf(sigma), mp.mpf(alpha)

    def f(z):
        return mp.npdf(z, 0, s) * ((1 - q) + q * mp.exp((2 * z - 1) / (2 * s * s))) ** a

    peak = a  # the shifted component's weight peaks near z = a
    points = sorted({-mp.inf, -30 * s, 0, mp.mpf(1) / 2, 1, peak, peak + 30 * s, mp.inf})
    return float(mp.log(mp.quad(f, points)) / (a - 1))


def corrected_rdp(q, sigma, orders, cache={}):
    """RDP at dp-accounting's default orders: its closed form at integer orders, mpmath at fractional ones."""
    key = (q, sigma)
    if key not in cache:
        values = []
        for a in orders:
            if q == 1.0 or float(a).is_integer():
                values.append(float(rdp_privacy_accountant._compute_rdp_poisson_subsampled_gaussian(q, sigma, [a])[0]))
            else:
                values.append(rdp_mpmath(q, sigma, a))
        cache[key] = values
    return cache[key]


def main():
    out = {"generator": "make_fixtures.py", "dp_accounting": dp_accounting.__version__ if hasattr(dp_accounting, "__version__") else "unknown"}
    # Per-order RDP: ours must match mpmath within 0.1 % relative.
    orders = []
    for q in (0.01, 0.1, 0.5):
        for sigma in (0.7, 1.0, 2.0):
            for alpha in (1.5, 2.5, 3.7, 8.0, 12.25, 32.0):
                reference = rdp_mpmath(q, sigma, alpha)
                google = float(rdp_privacy_accountant._compute_rdp_poisson_subsampled_gaussian(q, sigma, [alpha])[0])
                # dp-accounting gives up (inf) where its series does not converge: recorded as null.
                orders.append({"q": q, "sigma": sigma, "order": alpha, "rdp": reference,
                               "dp_accounting": google if math.isfinite(google) else None})
    out["rdp_orders"] = orders
    # epsilon for delta, both accountants, over a grid of (q, sigma, steps, delta).
    cases = []
    for q in (0.001, 0.01, 0.1, 1.0):
        for sigma in (0.6, 1.0, 1.5, 4.0):
            for steps in (1, 100, 1000, 10000):
                for delta in (1e-5,):
                    event = dp_event.SelfComposedDpEvent(
                        dp_event.PoissonSampledDpEvent(q, dp_event.GaussianDpEvent(sigma)), steps)
                    rdp = rdp_privacy_accountant.RdpAccountant()
                    rdp.compose(event)
                    orders = rdp_privacy_accountant.DEFAULT_RDP_ORDERS
                    per_step = corrected_rdp(q, sigma, orders)
                    eps, _ = rdp_privacy_accountant.compute_epsilon(orders, [steps * r for r in per_step], delta)
                    # rdp_epsilon: dp-accounting's conversion over its default orders, fractional-order RDP from
                    # mpmath; dp_accounting_rdp_epsilon: what its own RdpAccountant says (for the record).
                    case = {"q": q, "sigma": sigma, "steps": steps, "delta": delta, "rdp_epsilon": float(eps),
                            "dp_accounting_rdp_epsilon": float(rdp.get_epsilon(delta))}
                    # PLD at T = 10,000 is slow in Python: a few realistic points only.
                    if steps <= 1000 or (q, sigma) in {(0.01, 1.0), (0.001, 1.0), (0.01, 0.6), (0.001, 0.6)}:
                        pld = pld_privacy_accountant.PLDAccountant()
                        pld.compose(event)
                        case["pld_epsilon"] = float(pld.get_epsilon(delta))
                    cases.append(case)
                    print(case, flush=True)
    out["epsilon"] = cases
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "accountant.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print("wrote", path)


if __name__ == "__main__":
    main()
