"""PyJWT (with the `cryptography` backend), the JWT library most Python Salesforce clients
use (simple-salesforce's JWT login among them), on both sides of sfsync's JWT bearer flow:

  sign KEY_FILE ISS SUB AUD      prints an RS256 assertion as such a client makes it
  verify CERT_FILE AUD TOKEN     checks an assertion (signature with the certificate's key,
                                 aud, exp) and prints its header and claims as JSON
  pkcs1 KEY_FILE OUT_FILE        writes the key as PKCS#1 (BEGIN RSA PRIVATE KEY)
"""

import json
import sys
import time

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization


def main(argv):
    command = argv[1]
    if command == "sign":
        key_file, iss, sub, aud = argv[2:6]
        with open(key_file, "rb") as f:
            key = f.read()
        claims = {"iss": iss, "sub": sub, "aud": aud, "exp": int(time.time()) + 180}
        print(jwt.encode(claims, key, algorithm="RS256"))
    elif command == "verify":
        cert_file, aud, token = argv[2:5]
        with open(cert_file, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        claims = jwt.decode(
            token,
            cert.public_key(),
            algorithms=["RS256"],
            audience=aud,
            options={"require": ["iss", "sub", "aud", "exp"]},
        )
        print(json.dumps({"header": jwt.get_unverified_header(token), "claims": claims}))
    elif command == "pkcs1":
        key_file, out_file = argv[2:4]
        with open(key_file, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        with open(out_file, "wb") as f:
            f.write(pem)
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv)
