"""Install mdc_plugin: ``pip install -e ".[tests]"``."""
import os.path as osp
import re

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_requirements(name: str) -> list:
    """Return the requirement lines of ``requirements/<name>.txt``."""
    with open(osp.join(HERE, 'requirements', f'{name}.txt')) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line and not line.startswith('-')]


def read_version() -> str:
    with open(osp.join(HERE, 'mdc_plugin', 'version.py')) as f:
        return re.search(r"__version__ = '([^']+)'", f.read()).group(1)


setup(
    name='mdc_plugin',
    version=read_version(),
    description='Diffusion-based image captioning (MDC, MC-Diffusion, '
    'Prefix-diffusion) as an MMPretrain plugin',
    long_description=open(osp.join(HERE, 'README.md')).read(),
    long_description_content_type='text/markdown',
    python_requires='>=3.9',
    packages=find_packages(include=['mdc_plugin', 'mdc_plugin.*']),
    package_data={'mdc_plugin': ['assets/**/*']},
    include_package_data=True,
    install_requires=read_requirements('runtime'),
    extras_require={'tests': read_requirements('tests')},
    license='Apache-2.0',
)
