"""pip-installable mmctx: ``pip install -e .`` beside mmdet and mmseg.

mmcv cannot come from PyPI as a wheel, so the requirements are not passed to
``install_requires`` blindly: ``tools/setup_env.sh`` installs mmcv from a
locally built (and cached) wheel first, then this package.
"""
import os.path as osp

from setuptools import find_packages, setup


def read_version():
    scope = {}
    with open(osp.join('mmctx', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def read_requirements(path='requirements.txt'):
    with open(path) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line]


setup(
    name='mmctx',
    version=read_version(),
    description='Global-context and non-local attention modules for '
    'MMDetection 3.x and MMSegmentation 1.x',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    python_requires='>=3.8',
    install_requires=read_requirements(),
    license='Apache License 2.0',
)
