"""Render the model-zoo tables of ``configs/<paper>/README.md`` from the
paper's ``metafile.yml`` (the one source of every row).

    python tools/misc/model_zoo_tables.py            # rewrite every README
    python tools/misc/model_zoo_tables.py --check    # exit 1 if one is stale
"""
import argparse
import glob
import os.path as osp
import sys

from mmctx.utils.metafile import REPO, render_readme


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('papers', nargs='*',
                        help='paper folders under configs/ (default: all with a metafile)')
    parser.add_argument('--check', action='store_true',
                        help='write nothing; exit 1 naming each README that differs')
    args = parser.parse_args(argv)
    papers = args.papers or sorted(
        osp.basename(osp.dirname(p)) for p in glob.glob(osp.join(REPO, 'configs', '*', 'metafile.yml')))
    stale = []
    for paper in papers:
        path = osp.join(REPO, 'configs', paper, 'README.md')
        with open(path) as f:
            old = f.read()
        new = render_readme(paper, old)
        if new != old:
            stale.append(path)
            if not args.check:
                with open(path, 'w') as f:
                    f.write(new)
    for path in stale:
        print(f'{"stale" if args.check else "rewrote"}: {osp.relpath(path, REPO)}')
    return 1 if args.check and stale else 0


if __name__ == '__main__':
    sys.exit(main())
