#!/usr/bin/env python3
"""CDK entry point (`cdk.json` runs this): the ECR stack and the services stack.

npx aws-cdk@2 synth                       # offline; templates in infra/cdk.out
./deploy.sh                               # the whole deployment (infra/README.md)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tickpipe_infra.app import build_app

if __name__ == "__main__":
    build_app().synth()
