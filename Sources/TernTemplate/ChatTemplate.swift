/// One message of a conversation.
public struct ChatMessage: Sendable, Equatable {
    public var role: String
    public var content: String
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// A model's chat format: its checkpoint's `tokenizer.chat_template` (a Jinja template), a file
/// given with `--chat-template`, or a documented default for its family when it has neither.
public struct ChatTemplate: Sendable {
    /// Where the template came from, for messages ("the checkpoint", a path, "the gemma3 default").
    public let origin: String
    public let source: String
    let template: Template

    public init(source: String, origin: String) throws {
        self.source = source
        self.origin = origin
        template = try Template(source)
    }

    /// Gemma's turn format (Gemma 3 IT's own template, without its image handling), for Gemma
    /// checkpoints that carry none (the base models).
    public static let gemmaDefault = """
        {{ bos_token }}{%- if messages[0]['role'] == 'system' -%}{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}\
        {%- set loop_messages = messages[1:] -%}{%- else -%}{%- set first_user_prefix = "" -%}{%- set loop_messages = messages -%}\
        {%- endif -%}{%- for message in loop_messages -%}{%- set role = "model" if message['role'] == 'assistant' else message['role'] -%}\
        {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") + message['content'] | trim + '<end_of_turn>\n' }}\
        {%- endfor -%}{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}
        """

    /// ChatML (`<|im_start|>role ... <|im_end|>`), the format of Qwen and SmolLM2.
    public static let chatMLDefault = """
        {%- for message in messages -%}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}\
        {%- endfor -%}{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}
        """

    /// Llama 3's header format.
    public static let llama3Default = """
        {{ bos_token }}{%- for message in messages -%}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + \
        message['content'] | trim + '<|eot_id|>' }}{%- endfor -%}\
        {%- if add_generation_prompt -%}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif -%}
        """

    /// The default for a family when the checkpoint has no template: Gemma's turns for gemma3,
    /// Llama 3's headers for a vocabulary that has `<|start_header_id|>`, else ChatML.
    public static func fallback(architecture: String, hasToken: (String) -> Bool) -> ChatTemplate {
        if architecture.hasPrefix("gemma") {
            return try! ChatTemplate(source: gemmaDefault, origin: "the gemma default (Gemma turns)")
        }
        if hasToken("<|start_header_id|>") { return try! ChatTemplate(source: llama3Default, origin: "the Llama 3 default") }
        return try! ChatTemplate(source: chatMLDefault, origin: "the ChatML default")
    }

    /// The prompt for `messages`: the template rendered with `messages`, `add_generation_prompt`,
    /// `bos_token`, `eos_token`, no `tools`.
    public func apply(_ messages: [ChatMessage], addGenerationPrompt: Bool = true, bosToken: String = "",
                      eosToken: String = "", extra: [String: Value] = [:]) throws -> String {
        let msgs = Value.list(messages.map { .dict(Value.Dict([("role", .string($0.role)), ("content", .string($0.content))])) })
        var context: [String: Value] = ["messages": msgs, "add_generation_prompt": .bool(addGenerationPrompt),
                                        "bos_token": .string(bosToken), "eos_token": .string(eosToken)]
        context.merge(extra) { $1 }
        return try template.render(context)
    }
}
