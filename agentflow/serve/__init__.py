"""``agentflow serve``: CloudEvents in, a REST API and a console over HTTP, stateless.

``create_app(ServeContext)`` (``app.py``) builds the ASGI app; ``auth`` holds the API keys and
roles, ``problems`` the RFC 9457 errors, ``events`` the CloudEvents ingress, ``api``/``runs``/
``stream`` the REST API, ``openapi`` its description, and ``console*`` the pages for people.
Every answer comes from Temporal through the client layer and ``agentflow.inspect``.
"""
