// panva's oidc-provider on 127.0.0.1 (a free port), issuing DPoP-bound JWT access tokens
// (features.dPoP; resource indicators make the access tokens JWTs for audience "secureroute").
// Prints {"issuer": "http://127.0.0.1:<port>"} once listening; runs until SIGTERM or stdin closes.
//
//   node oidc_provider.mjs '{"clientId": "...", "clientSecret": "...", "requireNonce": false}'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import Provider from 'oidc-provider'

const input = JSON.parse(process.argv[2] ?? '{}')
const server = createServer()
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
const issuer = `http://127.0.0.1:${server.address().port}`

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'interop-es256', alg: 'ES256', use: 'sig' }

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: input.clientId,
      client_secret: input.clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      // The provider holds one EC key; its default RS256 would need an RSA key.
      id_token_signed_response_alg: 'ES256',
    },
  ],
  jwks: { keys: [signingKey] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    dPoP: { enabled: true, ...(input.requireNonce ? { nonceSecret: randomBytes(32) } : {}) },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:secureroute',
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        audience: 'secureroute',
        scope: 'read',
        accessTokenFormat: 'jwt',
        accessTokenTTL: 300,
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
})
server.on('request', provider.callback())
process.stdout.write(JSON.stringify({ issuer }) + '\n')

const stop = () => server.close(() => process.exit(0))
process.on('SIGTERM', stop)
process.stdin.on('end', stop)
process.stdin.resume()
