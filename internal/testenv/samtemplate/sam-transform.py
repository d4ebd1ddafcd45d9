"""Prints template.yaml after the SAM transform, as JSON, using the SAM
translator that cfn-lint carries (no AWS call). Package samtemplate embeds
it and runs it with python3 -c.

    sam-transform.py TEMPLATE [Name=value ...]

Parameters given are passed to the translator as CloudFormation passes them
to the AWS::Serverless transform (a CommaDelimitedList as a list); the
others take their defaults. SAM resolves them in a few places (an API's
Auth), and what it resolves there goes into the hash that names the REST
API's deployment."""
import json
import sys

from cfnlint.decode import decode
from cfnlint.template.transforms._sam import Transform


class BodyKeepingTransform(Transform):
    """cfn-lint's transform, but an AWS::Serverless::Api keeps its
    DefinitionBody: cfn-lint blanks it (it lints the body elsewhere), and
    the body is what SAM hashes into the deployment's logical ID."""

    def _replace_local_codeuri(self):
        bodies = {}
        for rid, res in self._template.get("Resources", {}).items():
            props = res.get("Properties")
            if res.get("Type") == "AWS::Serverless::Api" and isinstance(props, dict) and "DefinitionBody" in props:
                bodies[rid] = props["DefinitionBody"]
        super()._replace_local_codeuri()
        for rid, body in bodies.items():
            self._template["Resources"][rid]["Properties"]["DefinitionBody"] = body


template, problems = decode(sys.argv[1])
if problems:
    sys.exit("\n".join(str(p) for p in problems))
declared = template.get("Parameters", {})
values = {}
for arg in sys.argv[2:]:
    name, sep, value = arg.partition("=")
    if not sep or name not in declared:
        sys.exit(f"{arg}: not Name=value for a parameter of {sys.argv[1]}")
    values[name] = value.split(",") if declared[name].get("Type") == "CommaDelimitedList" else value
sam = BodyKeepingTransform(sys.argv[1], template, "eu-west-1")
sam._parameters = values
problems = sam.transform_template()
if problems:
    sys.exit("\n".join(str(p) for p in problems))
json.dump(sam.template(), sys.stdout, indent=1, default=str)
