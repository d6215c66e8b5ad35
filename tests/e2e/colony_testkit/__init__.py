"""Colony's end-to-end test kit: nodes on port 0 (colony_testkit.node), webhook
receivers, the environment the tests run against and one wait helper. Test
files import from here, never from each other (unittest would run an
imported TestCase twice)."""
from .env import COLONYD, STORE_KIND, STRIPE_SECRET, store_spec, stripe_headers  # noqa: F401
from .node import Node, listening_port  # noqa: F401
from .receivers import Receiver  # noqa: F401
from .waits import wait_until  # noqa: F401
from .api_case import NodeCase  # noqa: F401
from .tokens import AUDIENCE, ISSUER, SECRET, b64, jwt, token  # noqa: F401
