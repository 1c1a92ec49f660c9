//! Certificates made at test time (with the `openssl` crate, which native-tls builds on
//! anyway): a throwaway CA, server and client certificates signed by it, PEM and PKCS#12.
#![allow(dead_code)]
use std::path::{Path, PathBuf};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509NameBuilder, X509};

fn new_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

fn builder(cn: &str, key: &PKey<Private>) -> X509Builder {
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "spindle tests")
        .unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    let mut serial = BigNum::new().unwrap();
    serial.rand(120, MsbOption::MAYBE_ZERO, false).unwrap();
    b.set_serial_number(&serial.to_asn1_integer().unwrap())
        .unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
        .unwrap();
    b
}

/// A throwaway certificate authority.
pub struct Ca {
    pub cert: X509,
    key: PKey<Private>,
}

/// A certificate signed by a [`Ca`], with its key.
pub struct Leaf {
    pub cert: X509,
    pub key: PKey<Private>,
    ca: X509,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = new_key();
        let mut b = builder(name, &key);
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .unwrap(),
        )
        .unwrap();
        let skid = SubjectKeyIdentifier::new()
            .build(&b.x509v3_context(None, None))
            .unwrap();
        b.append_extension(skid).unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        Ca {
            cert: b.build(),
            key,
        }
    }

    pub fn pem(&self) -> Vec<u8> {
        self.cert.to_pem().unwrap()
    }

    /// A certificate for `names` (DNS names or IP addresses), for a server or a client.
    pub fn issue(&self, cn: &str, names: &[&str], client: bool) -> Leaf {
        let key = new_key();
        let mut b = builder(cn, &key);
        b.set_issuer_name(self.cert.subject_name()).unwrap();
        b.append_extension(BasicConstraints::new().build().unwrap())
            .unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_agreement()
                .build()
                .unwrap(),
        )
        .unwrap();
        let mut eku = ExtendedKeyUsage::new();
        if client {
            eku.client_auth();
        } else {
            eku.server_auth();
        }
        b.append_extension(eku.build().unwrap()).unwrap();
        if !names.is_empty() {
            let mut san = SubjectAlternativeName::new();
            for n in names {
                if n.parse::<std::net::IpAddr>().is_ok() {
                    san.ip(n);
                } else {
                    san.dns(n);
                }
            }
            let san = san
                .build(&b.x509v3_context(Some(&self.cert), None))
                .unwrap();
            b.append_extension(san).unwrap();
        }
        let ctx = b.x509v3_context(Some(&self.cert), None);
        let skid = SubjectKeyIdentifier::new().build(&ctx).unwrap();
        let akid = AuthorityKeyIdentifier::new()
            .keyid(false)
            .build(&ctx)
            .unwrap();
        b.append_extension(skid).unwrap();
        b.append_extension(akid).unwrap();
        b.sign(&self.key, MessageDigest::sha256()).unwrap();
        Leaf {
            cert: b.build(),
            key,
            ca: self.cert.clone(),
        }
    }
}

impl Leaf {
    /// The certificate chain (leaf, then the CA) in PEM.
    pub fn chain_pem(&self) -> Vec<u8> {
        let mut pem = self.cert.to_pem().unwrap();
        pem.extend(self.ca.to_pem().unwrap());
        pem
    }

    /// The private key, PEM PKCS#8.
    pub fn key_pem(&self) -> Vec<u8> {
        self.key.private_key_to_pem_pkcs8().unwrap()
    }

    /// A PKCS#12 archive of the key and certificate, protected by `password`.
    pub fn pkcs12(&self, password: &str) -> Vec<u8> {
        let mut chain = openssl::stack::Stack::new().unwrap();
        chain.push(self.ca.clone()).unwrap();
        Pkcs12::builder()
            .name("spindle test")
            .pkey(&self.key)
            .cert(&self.cert)
            .ca(chain)
            .build2(password)
            .unwrap()
            .to_der()
            .unwrap()
    }

    /// Writes `NAME.pem` (chain) and `NAME.key` into `dir`.
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let (c, k) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, self.chain_pem()).unwrap();
        std::fs::write(&k, self.key_pem()).unwrap();
        (c, k)
    }
}
