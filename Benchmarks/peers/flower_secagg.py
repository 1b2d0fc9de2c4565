"""Flower's secure aggregation, one federated round in one process: Flower's own SecAggWorkflow (MODE secagg,
complete graph, num_shares = N) or SecAggPlusWorkflow (MODE secaggplus, num_shares = K: a ring of K - 1
neighbours; by default the Harary degree + 1 that conclave's GraphParameters would pick for a sparse graph) on
the server side, and N ClientApps built with Flower's secagg_mod / secaggplus_mod on the client side. Each
client's update is D random float32 parameters; a fraction DROPOUT of the clients goes silent after sharing keys
(they never answer the collect-masked-vectors message), so the server must rebuild their pairwise masks from
Shamir shares — the expensive case.

Only the transport is replaced: a Grid that hands each message to the destination node's ClientApp in this
process, through Flower's protobuf serde both ways (as SuperLink/SuperNode would), instead of gRPC or Ray. The
protocol code timed is Flower's, unmodified.

Timed (wall, and process CPU — clients and server share this process):
  round_seconds    the whole fit round: SecAgg(+)Workflow.__call__ (setup, share keys, client fit + masking,
                   unmask, FedAvg.aggregate_fit), clients included, serde included;
  unmask_seconds   the server's unmasking: from the moment the unmask stage holds the clients' shares to the
                   call of strategy.aggregate_fit — combine_shares for every client, pseudo_rand_gen for the
                   live clients' self masks and, for every dropped client, one ECDH + one pairwise mask per
                   neighbour, mod, dequantize;
  share_seconds / mask_seconds   mean wall per client of the share-keys / collect-masked-vectors ClientApp call
                   (the latter: decrypting the shares, quantizing, self + pairwise masks).
Usage: flower_secagg.py N D DROPOUT secagg|secaggplus [K] [T]
  T (Shamir threshold) defaults to N/2 + 1 for secagg and, for secaggplus, to what conclave's GraphParameters picks
  for that K (K = 13, T = 7 at N = 50; K = 23, T = 12 at N ~ 100); K counts the client itself, as Flower does."""
import json
import logging
import resource
import sys
import time
from uuid import uuid4

import numpy as np

import flwr
from flwr.app import Context, Message, RecordDict
from flwr.client import NumPyClient
from flwr.clientapp import ClientApp
from flwr.client.mod import secagg_mod, secaggplus_mod
from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
from flwr.common.constant import SUPERLINK_NODE_ID
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key, Stage
from flwr.common.serde import message_from_proto, message_to_proto
from flwr.compat.common import recorddict_compat as compat
from flwr.server import ServerConfig
from flwr.server.client_manager import SimpleClientManager
from flwr.server.compat.grid_client_proxy import GridClientProxy
from flwr.server.compat.legacy_context import LegacyContext
from flwr.server.strategy import FedAvg
from flwr.server.workflow import SecAggPlusWorkflow, SecAggWorkflow
from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD
from flwr.server.workflow.constant import Key as WorkflowKey
from flwr.serverapp.grid import Grid
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

# What conclave's GraphParameters.choose picks for a Harary graph at 10 % dropout, no collusion, an active
# coordinator: degree 12 (t = 7) at n = 50, degree 22 (t = 12) at n = 100 and n = 101. Flower's num_shares counts
# the client itself, so K = degree + 1.
SPARSE = {50: (13, 7), 100: (23, 12), 101: (23, 12)}

n, d, dropout, mode = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
assert mode in ("secagg", "secaggplus"), "MODE must be secagg or secaggplus"
if mode == "secagg":
    assert len(sys.argv) <= 5 or int(sys.argv[5]) == n, "SecAgg shares among all N clients: K must be N"
    k, t = n, int(sys.argv[6]) if len(sys.argv) > 6 else n // 2 + 1
else:
    k0, t0 = SPARSE.get(n, (11, 6))
    k = int(sys.argv[5]) if len(sys.argv) > 5 else k0
    t = int(sys.argv[6]) if len(sys.argv) > 6 else (t0 if k == k0 else k // 2 + 1)
dropped_count = int(round(dropout * n))
logging.getLogger("flwr").setLevel(logging.WARNING)

rng = np.random.default_rng(1)
node_ids = [int(i) for i in rng.choice(2**62, size=n, replace=False) + 1000]
dropped = set(node_ids[:dropped_count])
updates = {nid: (rng.standard_normal(d, dtype=np.float32) * (1 / np.sqrt(d))).astype(np.float32) for nid in node_ids}


class Update(NumPyClient):
    """The client's 'training': hand back its precomputed update (weight 1), so only SecAgg+ is timed."""

    def __init__(self, nid):
        self.nid = nid

    def fit(self, parameters, config):
        return [updates[self.nid]], 1, {}


app = ClientApp(client_fn=lambda context: Update(context.node_id).to_client(),
                mods=[secagg_mod if mode == "secagg" else secaggplus_mod])
stage_times = {}  # stage -> list of per-client ClientApp wall seconds
marks = {}


class DirectGrid(Grid):
    """Flower's Grid interface with the nodes in this process: each message is serialized to protobuf, handed to
    the destination's ClientApp with that node's persistent Context, and the reply serialized back. A dropped
    node never answers once keys are shared, as if the server's timeout had expired."""

    def __init__(self):
        self._run = Run.create_empty(1)
        self.contexts = {nid: Context(run_id=1, node_id=nid, node_config={}, state=RecordDict(), run_config={})
                         for nid in node_ids}
        self.replies = {}

    def set_run(self, run):
        self._run = run

    @property
    def run(self):
        return self._run

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None):
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self):
        return list(node_ids)

    def push_messages(self, messages):
        ids = []
        for msg in messages:
            msg.metadata.__dict__["_message_id"] = str(uuid4())
            wire = message_to_proto(msg).SerializeToString()
            stage = msg.content.config_records[RECORD_KEY_CONFIGS][Key.STAGE]
            ids.append(msg.metadata.message_id)
            if stage in (Stage.COLLECT_MASKED_VECTORS, Stage.UNMASK) and msg.metadata.dst_node_id in dropped:
                continue
            proto = type(message_to_proto(msg))()
            proto.ParseFromString(wire)
            received = message_from_proto(proto)
            start = time.perf_counter()
            reply = app(received, self.contexts[received.metadata.dst_node_id])
            stage_times.setdefault(stage, []).append(time.perf_counter() - start)
            back = type(proto)()
            back.ParseFromString(message_to_proto(reply).SerializeToString())
            self.replies[msg.metadata.message_id] = message_from_proto(back)
        return ids

    def pull_messages(self, message_ids):
        return [self.replies.pop(i) for i in message_ids if i in self.replies]

    def send_and_receive(self, messages, *, timeout=None):
        messages = list(messages)
        stage = messages[0].content.config_records[RECORD_KEY_CONFIGS][Key.STAGE] if messages else None
        replies = list(self.pull_messages(self.push_messages(messages)))
        if stage == Stage.UNMASK:  # the server holds the shares: its unmasking starts now
            marks["unmask_start"] = (time.perf_counter(), time.process_time())
        return replies


class TimedFedAvg(FedAvg):
    def aggregate_fit(self, server_round, results, failures):
        marks["unmask_end"] = (time.perf_counter(), time.process_time())
        marks["aggregate"] = results[0][1].parameters if results else None
        return super().aggregate_fit(server_round, results, failures)


# The server's identity, as flwr.server.compat.app sets it before running a legacy ServerApp.
TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, SUPERLINK_NODE_ID
grid = DirectGrid()
strategy = TimedFedAvg(fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=n, min_available_clients=n,
                       fit_metrics_aggregation_fn=lambda metrics: {})
manager = SimpleClientManager()
for nid in node_ids:
    manager.register(GridClientProxy(nid, grid, 1))
context = LegacyContext(Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={}),
                        config=ServerConfig(num_rounds=1), strategy=strategy, client_manager=manager)
context.state.config_records[MAIN_CONFIGS_RECORD] = compat.ConfigRecord({WorkflowKey.CURRENT_ROUND: 1})
context.state.array_records[MAIN_PARAMS_RECORD] = compat.parameters_to_arrayrecord(
    ndarrays_to_parameters([np.zeros(d, dtype=np.float32)]), keep_input=True)
# max_weight = 1: every client weighs 1, so the weighted average is the plain mean of the live updates.
if mode == "secagg":
    workflow = SecAggWorkflow(reconstruction_threshold=t, max_weight=1.0)
else:
    workflow = SecAggPlusWorkflow(num_shares=k, reconstruction_threshold=t, max_weight=1.0)

wall0, cpu0 = time.perf_counter(), time.process_time()
workflow(grid, context)
wall1, cpu1 = time.perf_counter(), time.process_time()

assert "unmask_end" in marks, "Flower's secure aggregation halted (too few shares?)"
live = [nid for nid in node_ids if nid not in dropped]
expected = np.mean([updates[nid] for nid in live], axis=0, dtype=np.float64)
got = compat.arrayrecord_to_parameters(context.state.array_records[MAIN_PARAMS_RECORD], keep_input=True)
error = float(np.max(np.abs(parameters_to_ndarrays(got)[0] - expected)))
mean = lambda xs: sum(xs) / len(xs) if xs else 0.0  # noqa: E731
print(json.dumps({
    "peer": f"flower-{mode}", "flwr": flwr.__version__, "n": n, "d": d, "dropout": dropout, "dropped": len(dropped),
    "mode": mode, "num_shares": k, "threshold": t,
    "unmask_seconds": marks["unmask_end"][0] - marks["unmask_start"][0],
    "unmask_cpu_seconds": marks["unmask_end"][1] - marks["unmask_start"][1],
    "round_seconds": wall1 - wall0, "cpu_seconds": cpu1 - cpu0,
    "share_seconds": mean(stage_times.get(Stage.SHARE_KEYS, [])),
    "mask_seconds": mean(stage_times.get(Stage.COLLECT_MASKED_VECTORS, [])),
    "max_abs_error": error, "correct": error < 1e-4,
    "max_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
}))
