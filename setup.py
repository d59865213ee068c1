from setuptools import find_packages, setup

setup(
    name="relaykit",
    version="0.1.0",
    description="docker-mailserver compatible relay-host toolkit for Postfix",
    python_requires=">=3.11",
    package_dir={"": "target"},
    packages=find_packages("target"),
    install_requires=["sh>=2.0", "python-dotenv>=1.0", "rich>=13"],
    extras_require={
        "test": ["pytest>=7", "aiosmtpd>=1.4", "trustme>=1.1", "hypothesis>=6"],
    },
    entry_points={
        "console_scripts": [
            "relaykit=relaykit.cli.main:main",
            "setup=relaykit.cli.setup:main",
        ],
    },
)
