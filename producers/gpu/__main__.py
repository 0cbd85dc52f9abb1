import sys

from fleetpulse.producers.gpu.sampler import main

sys.exit(main())
