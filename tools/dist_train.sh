#!/usr/bin/env bash
# Distributed training with torchrun, one process per GPU (or CPU process).
#   bash tools/dist_train.sh CONFIG NUM_PROCESSES [train.py flags]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT as with torchrun.
set -euo pipefail
CONFIG=$1
NPROC=$2
shift 2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PYTHON=${PYTHON:-python}
cd "$(dirname "$0")/.."
PYTHONPATH="$PWD:${PYTHONPATH:-}" exec "$PYTHON" -m torch.distributed.run \
  --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
  --nproc_per_node="$NPROC" --master_port="$PORT" \
  tools/train.py "$CONFIG" --launcher pytorch "$@"
