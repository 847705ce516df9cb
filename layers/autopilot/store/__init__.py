"""The single DynamoDB table (see table.py). Only this package talks to DynamoDB."""
