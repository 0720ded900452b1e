"""Average cosine distances inside every context block of a trained model.

    python tools/analysis_tools/attention_stats.py CONFIG CHECKPOINT \
        [--num-images 100] [--out stats.json] [--unsafe-load]

Cao et al. (GCNet) §3.2.2 (Tables 1-2): for each mmctx block, the mean over images of
``avg_dist = 1/Np^2 sum_ij (1 - cos(v_i, v_j)) / 2`` between positions of the
block's input ('input'), its attention maps ('att', one per query position)
and its output before fusion ('output', z - x). 'att' and 'output' near 0
mean the block models query-independent context (the GC block is 0 by
construction).
"""
import argparse
import json

from mmengine.config import DictAction
from mmengine.runner import Runner

from mmctx.analysis import BlockRecorder, block_statistics, load_model
from mmctx.utils import add_unsafe_load_arg, apply_unsafe_load_arg

# Tables 1, 2, 4 of Global Context Networks: input / output / att; Table 3 adds
# key / query / prod (non-local blocks)
COLUMNS = ('input', 'key', 'query', 'prod', 'att', 'output')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Attention statistics')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--num-images', type=int, default=100,
                        help='images of the test set to average over')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out', default=None, help='write the table as JSON')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    add_unsafe_load_arg(parser)
    return parser.parse_args(argv)


def collect_statistics(model, dataloader, num_images):
    """{block name: {column: mean distance}} over ``num_images`` images."""
    sums, counts, seen = {}, {}, 0
    with BlockRecorder(model) as recorder:
        for batch in dataloader:
            if seen >= num_images:
                break
            model.test_step(batch)
            seen += len(batch['inputs'])
            for name, calls in recorder.records.items():
                block = recorder.blocks[name]
                for x, out in calls:
                    for key, value in block_statistics(block, x, out).items():
                        sums.setdefault(name, {}).setdefault(key, 0.0)
                        sums[name][key] += value
                        counts[(name, key)] = counts.get((name, key), 0) + 1
                calls.clear()
    if seen == 0:
        raise ValueError('the test set is empty: no statistics to collect')
    return {name: {key: total / counts[(name, key)] for key, total in cols.items()}
            for name, cols in sums.items()}, seen


def main(argv=None):
    args = parse_args(argv)
    apply_unsafe_load_arg(args)
    model = load_model(args.config, args.checkpoint, args.device, args.cfg_options)
    cfg = model.cfg
    cfg.test_dataloader.batch_size = 1
    dataloader = Runner.build_dataloader(cfg.test_dataloader)
    stats, seen = collect_statistics(model, dataloader, args.num_images)
    width = max(len(n) for n in stats) + 2
    print(f'Average cosine distance (Cao et al. (GCNet) §3.2.2) over {seen} images')
    print('block'.ljust(width) + 'type'.ljust(32) + ''.join(c.rjust(10) for c in COLUMNS))
    modules = dict(model.named_modules())
    for name, cols in stats.items():
        print(name.ljust(width) + type(modules[name]).__name__.ljust(32) +
              ''.join((f'{cols[c]:.4f}' if c in cols else '-').rjust(10)
                      for c in COLUMNS))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(num_images=seen, blocks=stats), f, indent=1)
    return stats


if __name__ == '__main__':
    main()
