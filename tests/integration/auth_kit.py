"""Credentials for the auth tests, made at test time: JWTs and a JWKS
(HS256, RS256, EdDSA; python's cryptography), bcrypt and yescrypt hashes
(libcrypt through ctypes), and the GATEWAY_AUTH file."""

import base64
import ctypes
import ctypes.util
import json
import os
import time

from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

ISSUER = "https://issuer.test"
AUDIENCE = "natsrpc-gateway"


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_b64u(n):
    return b64u(n.to_bytes((n.bit_length() + 7) // 8, "big"))


_libcrypt = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
_libcrypt.crypt.restype = ctypes.c_char_p
_libcrypt.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
_libcrypt.crypt_gensalt.restype = ctypes.c_char_p
_libcrypt.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]


def crypt_hash(password, prefix, cost=None):
    """A hash of password by libcrypt: prefix "$2b$" (bcrypt, cost 4 to keep
    the tests quick, unless cost says) or "$y$" (yescrypt, default cost)."""
    if cost is None:
        cost = 4 if prefix == "$2b$" else 0
    salt = _libcrypt.crypt_gensalt(prefix.encode(), cost, None, 0)
    return _libcrypt.crypt(password.encode(), salt).decode()


class Keys:
    """One key of each kind, their JWKS, and a signer."""

    def __init__(self):
        self.hs_secret = os.urandom(32)
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ed = ed25519.Ed25519PrivateKey.generate()
        self.other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pub = self.rsa.public_key().public_numbers()
        ed_raw = self.ed.public_key().public_bytes(serialization.Encoding.Raw,
                                                   serialization.PublicFormat.Raw)
        self.jwks = {"keys": [
            {"kty": "oct", "kid": "hs1", "alg": "HS256", "k": b64u(self.hs_secret)},
            {"kty": "RSA", "kid": "rs1", "alg": "RS256", "n": _int_b64u(pub.n), "e": _int_b64u(pub.e)},
            {"kty": "OKP", "kid": "ed1", "crv": "Ed25519", "x": b64u(ed_raw)},
        ]}
        self.rsa_pem = self.rsa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def claims(self, **over):
        now = int(time.time())
        c = {"iss": ISSUER, "aud": AUDIENCE, "sub": "jwt-user", "exp": now + 600, "iat": now,
             "scope": "things:write"}
        c.update(over)
        return {k: v for k, v in c.items() if v is not None}

    def token(self, alg="RS256", kid=None, key=None, header=None, **claims):
        """A JWS compact token of claims (defaults from claims()). key
        overrides the signing key (bytes for HS256, a private key else)."""
        h = {"alg": alg, "typ": "JWT"}
        if kid is not None:
            h["kid"] = kid
        if header:
            h.update(header)
        signing = b64u(json.dumps(h).encode()) + "." + b64u(json.dumps(self.claims(**claims)).encode())
        data = signing.encode()
        if alg == "HS256":
            m = hmac.HMAC(key if key is not None else self.hs_secret, hashes.SHA256())
            m.update(data)
            sig = m.finalize()
        elif alg == "RS256":
            sig = (key or self.rsa).sign(data, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "EdDSA":
            sig = (key or self.ed).sign(data)
        elif alg == "none":
            sig = b""
        else:
            raise ValueError(alg)
        return signing + "." + b64u(sig)


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def write_auth_file(directory, keys, tokens=None, basic_users=None, authorizer=None, jwt=True,
                    name="auth.json", topics=None):
    """Writes the JWKS and the GATEWAY_AUTH file into directory; returns the
    file's path. jwks_file is relative, as the file's own directory."""
    with open(os.path.join(directory, "jwks.json"), "w") as f:
        json.dump(keys.jwks, f)
    doc = {}
    if tokens:
        doc["tokens"] = tokens
    if basic_users:
        doc["basic"] = basic_users
    if jwt:
        doc["jwt"] = {"jwks_file": "jwks.json", "issuer": ISSUER, "audience": AUDIENCE,
                      "scopes_claim": "scope"}
    if authorizer:
        doc["authorizer"] = authorizer
    if topics:
        doc["topics"] = topics
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def principal_stack(cls, prefix, write_auth, env=None):
    """For setUpClass: nats-server (cls.nats), test_principal_service
    (cls.svc) and a gateway on one loop (cls.gw, cls.port; env adds to its
    environment) whose GATEWAY_AUTH is the file write_auth(stack, keys)
    writes and returns the path of. cls.keys holds the keys."""
    cls.keys = Keys()

    def start(stack):
        cls.nats = stack.nats()
        cls.svc = stack.service("test_principal_service", cls.nats,
                                ready_subject="principal_service.whoami")
        e = {"GATEWAY_AUTH": write_auth(stack, cls.keys), "GATEWAY_THREADS": "1"}
        e.update(env or {})
        cls.gw, cls.port = stack.gateway(cls.nats, env=e)
    cls.start_stack(prefix, start)
