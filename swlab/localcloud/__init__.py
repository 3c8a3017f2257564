"""The embedded local cloud: moto's AWS APIs, our Lambda and API Gateway data planes, on 127.0.0.1."""
