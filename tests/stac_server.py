"""Start stac-fastapi-geoparquet on 127.0.0.1 (run as ``python _server.py COLLECTIONS_JSON PORT``).

The DuckDB client is built with the extensions shipped by ``rustac-duckdb-extensions`` so the
server never tries to download one (CI has no internet beyond package registries).
"""

import sys

import rustac_duckdb_extensions
import uvicorn
from rustac import DuckdbClient
from stac_fastapi.geoparquet.api import create
from stac_fastapi.geoparquet.settings import Settings

client = DuckdbClient(
    extension_directory=rustac_duckdb_extensions.extension_directory(), install_extensions=False, extensions=["spatial", "icu"]
)
settings = Settings(
    stac_fastapi_collections_href=sys.argv[1],
    stac_fastapi_title="geohsi test catalogue",
    stac_fastapi_description="EnMAP Potsdam tiles and synthetic items",
    stac_fastapi_landing_id="geohsi-test",
)
api = create(settings=settings, duckdb_client=client)
uvicorn.run(api.app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
