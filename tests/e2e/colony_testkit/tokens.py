"""HS256 tokens the e2e nodes are started to accept (--auth-jwt-hs256-secret
SECRET, issuer ISSUER, audience AUDIENCE): one secret per test process."""
import base64
import hashlib
import hmac
import json
import time
import uuid

SECRET = "e2e-hs256-secret-" + uuid.uuid4().hex
ISSUER = "https://idp.example/realms/colony"
AUDIENCE = "colony-api"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims, secret=SECRET, alg="HS256"):
    header = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest() if alg == "HS256" else b""
    return f"{header}.{payload}.{b64(sig)}"


def token(tenant=None, roles=(), sub=None, **extra):
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub or "sub-" + uuid.uuid4().hex[:8], "exp": now + 300,
              "iat": now, "roles": list(roles)}
    if tenant:
        claims["tenant_id"] = tenant
    claims.update(extra)
    return jwt(claims)
