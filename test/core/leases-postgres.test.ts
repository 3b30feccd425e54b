import { leaseManagerSuite } from './leases-suite.js'

leaseManagerSuite('postgres')
