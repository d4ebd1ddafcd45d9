"""Prints template.yaml after the SAM transform, as JSON, using the SAM
translator that cfn-lint carries (no AWS call). Used by deploy_test.go."""
import json
import sys

from cfnlint.decode import decode
from cfnlint.template.transforms._sam import Transform

template, problems = decode(sys.argv[1])
if problems:
    sys.exit("\n".join(str(p) for p in problems))
sam = Transform(sys.argv[1], template, "eu-west-1")
problems = sam.transform_template()
if problems:
    sys.exit("\n".join(str(p) for p in problems))
json.dump(sam.template(), sys.stdout, indent=1, default=str)
