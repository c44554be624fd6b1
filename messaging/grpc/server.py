"""Builds the gRPC server of the grpc role: GoChat services behind the interceptor,
plus standard health checking and server reflection."""
from __future__ import annotations

from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from messaging.grpc.interceptors import GoChatInterceptor
from messaging.grpc.logic import LogicServicer
from messaging.grpc.repo import RepoServicer
from protos.gochat.v1 import logic_pb2, logic_pb2_grpc, repo_pb2, repo_pb2_grpc

SERVICE_NAMES = (
    logic_pb2.DESCRIPTOR.services_by_name["LogicService"].full_name,
    repo_pb2.DESCRIPTOR.services_by_name["RepoService"].full_name,
)


def build_server(*, address: str, max_workers: int) -> tuple[grpc.Server, int, health.HealthServicer]:
    """A server bound to `address` (host:port; port 0 picks a free one), not yet started.

    Returns the server, the bound port and the health servicer (statuses start SERVING).
    """
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers), interceptors=[GoChatInterceptor()])
    logic_pb2_grpc.add_LogicServiceServicer_to_server(LogicServicer(), server)
    repo_pb2_grpc.add_RepoServiceServicer_to_server(RepoServicer(), server)

    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in (*SERVICE_NAMES, ""):  # "" is the whole server's status
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)

    reflection.enable_server_reflection((*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot bind gRPC server to {address}")
    return server, port, health_servicer
