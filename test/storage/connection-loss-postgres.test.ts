import { connectionLossSuite } from './connection-loss.js'

// Issue 12 item 3; the suite is in connection-loss.ts.
connectionLossSuite('postgres')
