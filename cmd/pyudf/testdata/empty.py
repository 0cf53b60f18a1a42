import json
from pyudf import udf
