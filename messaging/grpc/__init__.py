"""The gRPC role (`manage.py run_grpc`): LogicService and RepoService of protos/ as thin
adapters over the same services and selectors the REST API calls."""
