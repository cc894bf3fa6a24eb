#!/usr/bin/env bash
# Distributed training on one or more nodes with torchrun.
#
#   tools/dist_train.sh CONFIG GPUS [tools/train.py args...]
#
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
# `python -m torch.distributed.run` is torchrun for the `python` on PATH.
set -e

CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
TOOLS=$(cd "$(dirname "$0")" && pwd)

PYTHONPATH="$TOOLS/..${PYTHONPATH:+:$PYTHONPATH}" \
python -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --master_port="$PORT" \
    --nproc_per_node="$GPUS" \
    "$TOOLS/train.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"
