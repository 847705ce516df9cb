"""The only package that imports boto3: clients and the ports' AWS implementations."""
