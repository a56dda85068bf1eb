// DPoP clients nobody here wrote, driven by tests/interop/test_interop_*.py.
//
//   node client.mjs dpop         '<json>'   panva's `dpop`: a key, a proof for the token endpoint,
//                                            the token request by hand, then proofs for `targets`
//   node client.mjs oauth4webapi '<json>'   panva's `oauth4webapi`: discovery, client_credentials
//                                            with DPoP, a protected-resource request to `resource`
//                                            (its own nonce handling), then `dpop` proofs for `targets`
//
// <json>: {issuer | tokenEndpoint, clientId, clientSecret, params: {...}, resource?, targets: [{htm, htu}]}
// Prints one JSON object: {tokenType, token, proofs: [...], resource?: {status, body}}. The token
// and proofs go to the test through this pipe only; nothing is logged. Loopback URLs only.
import * as dpop from 'dpop'
import * as oauth from 'oauth4webapi'

const [mode, raw] = process.argv.slice(2)
const input = JSON.parse(raw)

function loopbackOnly(url) {
  const { hostname } = new URL(url)
  if (!/^127\.\d+\.\d+\.\d+$/.test(hostname)) throw new Error(`not a loopback URL: ${url}`)
  return url
}

async function proofsFor(keyPair, token, targets) {
  const proofs = []
  for (const { htm, htu } of targets) proofs.push(await dpop.generateProof(keyPair, loopbackOnly(htu), htm, undefined, token))
  return proofs
}

async function withDpopPackage() {
  const keyPair = await dpop.generateKeyPair('ES256')
  const tokenEndpoint = loopbackOnly(input.tokenEndpoint)
  const response = await fetch(tokenEndpoint, {
    method: 'POST',
    headers: {
      authorization: 'Basic ' + Buffer.from(`${input.clientId}:${input.clientSecret}`).toString('base64'),
      'content-type': 'application/x-www-form-urlencoded',
      dpop: await dpop.generateProof(keyPair, tokenEndpoint, 'POST'),
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', ...input.params }),
  })
  const body = await response.json()
  if (response.status !== 200) throw new Error(`token endpoint answered ${response.status}: ${body.error}`)
  return {
    tokenType: body.token_type,
    token: body.access_token,
    jkt: await dpop.calculateThumbprint(keyPair.publicKey),
    proofs: await proofsFor(keyPair, body.access_token, input.targets ?? []),
  }
}

async function withOauth4webapi() {
  const issuer = new URL(loopbackOnly(input.issuer))
  const insecure = { [oauth.allowInsecureRequests]: true } // plain http on loopback, in a test
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, insecure))
  const client = { client_id: input.clientId }
  const keyPair = await oauth.generateKeyPair('ES256')
  const DPoP = oauth.DPoP(client, keyPair)
  const auth = oauth.ClientSecretBasic(input.clientSecret)
  const grant = () => oauth.clientCredentialsGrantRequest(as, client, auth, input.params ?? {}, { DPoP, ...insecure })
  let tokenResponse
  try {
    tokenResponse = await oauth.processClientCredentialsResponse(as, client, await grant())
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err
    tokenResponse = await oauth.processClientCredentialsResponse(as, client, await grant())
  }
  const token = tokenResponse.access_token
  const result = {
    tokenType: tokenResponse.token_type,
    token,
    jkt: await dpop.calculateThumbprint(keyPair.publicKey),
    proofs: await proofsFor(keyPair, token, input.targets ?? []),
  }
  if (input.resource) {
    const url = new URL(loopbackOnly(input.resource))
    const call = () => oauth.protectedResourceRequest(token, 'GET', url, new Headers({ accept: 'application/json' }), null, { DPoP, ...insecure })
    let response
    try {
      response = await call()
    } catch (err) {
      if (!oauth.isDPoPNonceError(err)) throw err
      result.resourceNonceRetry = true
      response = await call()
    }
    result.resource = { status: response.status, body: await response.json() }
  }
  return result
}

const modes = { dpop: withDpopPackage, oauth4webapi: withOauth4webapi }
if (!(mode in modes)) throw new Error(`mode: one of ${Object.keys(modes).join(', ')}`)
process.stdout.write(JSON.stringify(await modes[mode]()) + '\n')
