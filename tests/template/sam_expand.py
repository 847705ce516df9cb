"""Transform template.yaml with the SAM translator and print each function's IAM policies as JSON.

Runs under .venv-sam's Python (aws-sam-translator lives there, not in the project venv):

    .venv-sam/bin/python tests/template/sam_expand.py template.yaml > expanded.json

Output: {"translator": version, "functions": {Logical: {"role": RoleLogicalId,
"policies": [{"name": ..., "statements": [...]}], "managed_policy_arns": [...]}},
"resources": {...the transformed template's Resources...}}. Intrinsics (Fn::Sub, Ref, ...) are left
as they are: the caller resolves them with its own parameter values. No AWS credentials are needed:
the managed-policy name lookup (only for bare names such as "AWSLambdaExecute") is stubbed empty.
"""

import json
import os
import sys
from typing import Any

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from samtranslator import __version__
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class _NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


def _s3_code_uris(template: dict[str, Any]) -> None:
    """Local CodeUri/ContentUri -> placeholder S3 URIs, as `sam validate` does (the code is irrelevant here)."""
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties") or {}
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                props[key] = "s3://placeholder-bucket/" + props[key].strip("/")


def main(path: str) -> None:
    with open(path, encoding="utf-8") as handle:
        template = yaml_parse(handle.read())
    _s3_code_uris(template)
    transformed = transform(template, {}, _NoManagedPolicies())
    resources = transformed["Resources"]
    functions: dict[str, Any] = {}
    for logical, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        role = resource["Properties"].get("Role", {})
        role_id = role.get("Fn::GetAtt", [None])[0] if isinstance(role, dict) else None
        role_props = resources.get(role_id, {}).get("Properties", {}) if role_id else {}
        functions[logical] = {
            "role": role_id,
            "policies": [
                {"name": p.get("PolicyName"), "statements": p["PolicyDocument"].get("Statement", [])}
                for p in role_props.get("Policies", [])
            ],
            "managed_policy_arns": role_props.get("ManagedPolicyArns", []),
            "assume_role_policy": role_props.get("AssumeRolePolicyDocument"),
        }
    json.dump({"translator": __version__, "functions": functions, "resources": resources}, sys.stdout,
              indent=1, sort_keys=True, default=str)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "template.yaml")
